package cli

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newRmiCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi NAME...",
		Short: "Remove image names (blobs go with prune)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			for _, a := range args {
				n, err := image.NormalizeName(a)
				if err != nil {
					return err
				}
				if err := st.Untag(n); err != nil {
					return fmt.Errorf("removing %s: %w", n, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", n)
			}
			return nil
		},
	}
}

func newTagCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give a stored image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			// A multi-platform name: the new name is the whole index.
			d, isIndex, err := storedIndexDigest(st, args[0])
			if err != nil {
				return err
			}
			if !isIndex {
				img, err := storedImage(st, args[0])
				if err != nil {
					return err
				}
				if d, err = img.Digest(); err != nil {
					return err
				}
			}
			dst, err := image.NormalizeName(args[1])
			if err != nil {
				return err
			}
			return st.Tag(dst, d)
		},
	}
}

// storedImage finds an image in the store by name or digest.
func storedImage(st *store.Store, ref string) (v1.Image, error) {
	return storedImageFor(st, ref, nil)
}

// storedImageFor is storedImage for platform p (nil: the host's, as Image picks).
func storedImageFor(st *store.Store, ref string, p *v1.Platform) (v1.Image, error) {
	get := st.Image
	if p != nil {
		get = func(r string) (v1.Image, error) { return st.ImageFor(r, *p) }
	}
	if len(ref) > 7 && ref[:7] == "sha256:" {
		return get(ref)
	}
	n, err := image.NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	img, err := get(n)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", n, err)
	}
	return img, nil
}
