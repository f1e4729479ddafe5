package cli

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/spf13/cobra"
)

func newImportCmd(g *Globals) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "import [--platform OS/ARCH] SOURCE NAME",
		Short: "Import a rootfs directory or tarball, a docker-archive, or an OCI layout/archive",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p *v1.Platform
			if cmd.Flags().Changed("platform") {
				ps, err := parsePlatforms([]string{platform})
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				p = &ps[0]
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			name, err := image.NormalizeName(args[1])
			if err != nil {
				return err
			}
			var d v1.Hash
			if p != nil {
				d, err = image.ImportFor(image.WithLogf(cmd.Context(), logf), st, args[0], name, *p)
			} else {
				d, err = image.Import(image.WithLogf(cmd.Context(), logf), st, args[0], name)
			}
			if err != nil {
				return fmt.Errorf("importing %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "the image is for this platform (os/arch[/variant]); NAME keeps its images for other platforms (an index)")
	return cmd
}
