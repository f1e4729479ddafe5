package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
	"github.com/spf13/cobra"
)

func newReportCmd(g *Globals) *cobra.Command {
	var compare, format, output string
	var top int
	cmd := &cobra.Command{
		Use:   "report IMAGE",
		Short: "Report an image's size and attack surface, optionally against another image",
		Long: `Report an image's size (compressed, uncompressed, by layer, by top-level directory,
largest files, bytes hidden by later layers) and attack surface (compilers, headers,
package managers, shells, setuid files, world-writable paths, file capabilities, root,
secrets, ELF executables).

IMAGE and OTHER may be a store name or digest, an OCI layout directory or archive, a
docker-archive, or a registry reference.

With --compare OTHER, IMAGE and OTHER are set side by side with the size reduction from
IMAGE to OTHER and the categories present in only one of them.

--max-size and --forbid apply to IMAGE: a violation prints the report, then the offending
paths on stderr, and exits with status 3.`,
		Example: `  slimbuild report hello:naive --compare hello:latest
  slimbuild report ./hello.oci.tar --format json -o report.json
  slimbuild report hello:latest --forbid compilers,shells --max-size 5MB`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			maxSize, _ := cmd.Flags().GetString("max-size")
			forbid, _ := cmd.Flags().GetString("forbid")
			gate, err := report.ParseGate(maxSize, forbid)
			if err != nil {
				return err
			}
			switch format {
			case "text", "json", "html":
			default:
				return fmt.Errorf("--format %q: use text, json or html", format)
			}
			st, err := g.Store()
			if err != nil {
				return err
			}
			ctx := image.WithLogf(cmd.Context(), func(f string, a ...any) {
				fmt.Fprintf(cmd.ErrOrStderr(), f+"\n", a...)
			})
			r, err := analyzeRef(ctx, st, args[0], top)
			if err != nil {
				return err
			}
			var c *report.Comparison
			if compare != "" {
				other, err := analyzeRef(ctx, st, compare, top)
				if err != nil {
					return err
				}
				c = report.Compare(r, other)
			}
			if err := writeReport(cmd.OutOrStdout(), output, format, r, c); err != nil {
				return err
			}
			if v := gate.Check(r); len(v) > 0 {
				return &report.GateError{Violations: v}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&compare, "compare", "", "set IMAGE side by side with the image `OTHER`")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json or html")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the report to `FILE` instead of stdout")
	cmd.Flags().IntVar(&top, "top", report.DefaultTop, "how many of the largest files to list")
	addGateFlags(cmd)
	return cmd
}

// analyzeRef opens ref and analyses it.
func analyzeRef(ctx context.Context, st *store.Store, ref string, top int) (*report.Report, error) {
	img, err := image.Open(ctx, st, ref)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", ref, err)
	}
	if top <= 0 {
		top = -1
	}
	r, err := report.AnalyzeContext(ctx, img, report.Options{Name: ref, Top: top})
	if err != nil {
		return nil, fmt.Errorf("analysing %s: %w", ref, err)
	}
	return r, nil
}

// writeReport renders r (or the comparison c, when set) to path, or to stdout when path is "".
func writeReport(stdout io.Writer, path, format string, r *report.Report, c *report.Comparison) (err error) {
	w := stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("creating report file: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing report file %s: %w", path, cerr)
			}
		}()
		w = f
	}
	switch {
	case format == "json" && c != nil:
		return report.WriteJSON(w, c)
	case format == "json":
		return report.WriteJSON(w, r)
	case format == "html" && c != nil:
		return report.WriteComparisonHTML(w, c)
	case format == "html":
		return report.WriteHTML(w, r)
	case c != nil:
		return report.WriteComparisonText(w, c)
	default:
		return report.WriteText(w, r)
	}
}
