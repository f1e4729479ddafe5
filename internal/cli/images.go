package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/spf13/cobra"
)

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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Digest[:19], report.HumanSize(r.Size), ago(r.Created))
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
