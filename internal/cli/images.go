package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/build"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func init() {
	register(newImportCmd)
	register(newPullCmd)
	register(newPushCmd)
	register(newImagesCmd)
	register(newRmiCmd)
	register(newTagCmd)
	register(newSaveCmd)
	register(newInspectCmd)
	register(newRunCmd)
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
			d, err := image.Import(cmd.Context(), st, args[0], name)
			if err != nil {
				return fmt.Errorf("importing %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), d)
			return nil
		},
	}
}

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
	return &cobra.Command{
		Use:   "push NAME [DEST]",
		Short: "Push a stored image to a registry (to DEST when given)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			return image.Push(cmd.Context(), st, name, dest)
		},
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func newImagesCmd(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List stored images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			entries, err := st.List()
			if err != nil {
				return err
			}
			type row struct {
				Name    string    `json:"name"`
				Digest  string    `json:"digest"`
				Size    int64     `json:"size"`
				Created time.Time `json:"created"`
			}
			var rows []row
			for _, e := range entries {
				r := row{Name: e.Name, Digest: e.Digest.String()}
				if img, err := st.Image(e.Digest.String()); err == nil {
					r.Size = imageSize(img)
					if cf, err := img.ConfigFile(); err == nil {
						r.Created = cf.Created.Time
					}
				}
				rows = append(rows, r)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Digest[:19], humanSize(r.Size), ago(r.Created))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// imageSize is the compressed size: what a pull transfers.
func imageSize(img v1.Image) int64 {
	m, err := img.Manifest()
	if err != nil {
		return 0
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func humanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func ago(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

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
			img, err := storedImage(st, args[0])
			if err != nil {
				return err
			}
			d, err := img.Digest()
			if err != nil {
				return err
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
	if len(ref) > 7 && ref[:7] == "sha256:" {
		return st.Image(ref)
	}
	n, err := image.NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	img, err := st.Image(n)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", n, err)
	}
	return img, nil
}

func newSaveCmd(g *Globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "save -o FILE NAME...",
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
			imgs := map[string]v1.Image{}
			for _, a := range args {
				img, err := storedImage(st, a)
				if err != nil {
					return err
				}
				n, _ := image.NormalizeName(a)
				imgs[n] = img
			}
			tmp := out + ".tmp"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			if err := image.Save(f, imgs); err != nil {
				f.Close()
				os.Remove(tmp)
				return err
			}
			if err := f.Close(); err != nil {
				os.Remove(tmp)
				return err
			}
			return os.Rename(tmp, out)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write")
	return cmd
}

func newInspectCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Print an image's manifest and config as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			img, err := storedImage(st, args[0])
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

// exitError carries a process exit code through cobra to main.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func newRunCmd(g *Globals) *cobra.Command {
	var network string
	var rm bool
	cmd := &cobra.Command{
		Use:   "run [--network none|host] [--rm] IMAGE [CMD [ARG...]]",
		Short: "Run a stored image with runc",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.Store()
			if err != nil {
				return err
			}
			img, err := storedImage(st, args[0])
			if err != nil {
				return err
			}
			code, err := build.Run(cmd.Context(), st, img, build.RunOptions{
				Args: args[1:], Network: network, Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				if cmd.Context().Err() == context.Canceled {
					return &exitError{code: 130, msg: "interrupted"}
				}
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&network, "network", "none", "network: none or host")
	cmd.Flags().BoolVar(&rm, "rm", true, "remove the container afterwards (always done)")
	cmd.Flags().SetInterspersed(false)
	return cmd
}
