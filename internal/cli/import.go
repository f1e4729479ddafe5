package cli

import (
	"fmt"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/spf13/cobra"
)

func init() {
	register(newImportCmd)
}

func newImportCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import SOURCE NAME",
		Short: "Import a rootfs directory or tarball, a docker-archive, or an OCI layout/archive",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			name, err := image.NormalizeName(args[1])
			if err != nil {
				return err
			}
			d, err := image.Import(image.WithLogf(cmd.Context(), logf), st, args[0], name)
			if err != nil {
				return fmt.Errorf("importing %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
}
