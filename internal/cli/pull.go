package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newPullCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry into the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			img, err := image.Pull(cmd.Context(), st, args[0], logf)
			if err != nil {
				return err
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
}

func newPushCmd(g *Globals) *cobra.Command {
	var newRegistry func(io.Writer) *image.Registry
	var compression string
	cmd := &cobra.Command{
		Use:   "push NAME [DEST]",
		Short: "Push a stored image to a registry (to DEST when given); prints the digest",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := store.Compression(compression)
			if _, err := c.MediaType(); err != nil {
				return fmt.Errorf("--compression: %w", err)
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			name, err := image.NormalizeName(args[0])
			if err != nil {
				return err
			}
			dest := name
			if len(args) == 2 {
				dest = args[1]
			}
			d, err := newRegistry(cmd.ErrOrStderr()).PushStored(cmd.Context(), st, name, dest, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pushed %s@%s\n", dest, d)
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
	newRegistry = addRegistryFlags(cmd)
	cmd.Flags().StringVar(&compression, "compression", "gzip", "compress layers stored otherwise with: gzip, zstd or none")
	return cmd
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
