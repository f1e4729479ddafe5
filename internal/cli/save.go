package cli

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/spf13/cobra"
)

func newSaveCmd(g *Globals) *cobra.Command {
	var out, platform string
	cmd := &cobra.Command{
		Use:   "save [--platform OS/ARCH] -o FILE NAME...",
		Short: "Write images as a docker-archive (for docker load)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("save needs -o FILE")
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			var p *v1.Platform
			if cmd.Flags().Changed("platform") {
				ps, err := parsePlatforms([]string{platform})
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				p = &ps[0]
			}
			imgs := map[string]v1.Image{}
			for _, a := range args {
				img, err := storedImageFor(st, a, p)
				if err != nil {
					return err
				}
				n, _ := image.NormalizeName(a)
				imgs[n] = img
			}
			if out == "-" {
				return image.Save(cmd.OutOrStdout(), imgs)
			}
			return image.SaveFile(out, imgs)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", `file to write ("-": stdout; devices and fifos are written in place)`)
	cmd.Flags().StringVar(&platform, "platform", "", "save the image for this platform (os/arch[/variant]) of a multi-platform name (default: the host's)")
	return cmd
}

func newInspectCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Print an image's manifest and config as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, img, err := g.storeAndImage(args[0])
			if err != nil {
				return err
			}
			m, err := img.Manifest()
			if err != nil {
				return err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return err
			}
			d, _ := img.Digest()
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"digest": d.String(), "manifest": m, "config": cf})
		},
	}
}
