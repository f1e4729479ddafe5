package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxTextPaths is how many paths the text form lists per category.
const maxTextPaths = 5

// WriteJSON writes v (a *Report, *Comparison or Summary) as indented JSON with a final newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON report: %w", err)
	}
	return nil
}

// errWriter remembers the first write error so renderers can write freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}

func imageTitle(r *Report) string {
	if r.Image != "" {
		return fmt.Sprintf("%s (%s)", r.Image, r.Digest)
	}
	return r.Digest
}

func userText(user string) string {
	if strings.TrimSpace(user) == "" {
		return "(not set)"
	}
	return user
}

// WriteText writes r as aligned plain-text tables.
func WriteText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	writeText(ew, r)
	if ew.err != nil {
		return fmt.Errorf("writing text report: %w", ew.err)
	}
	return nil
}

func writeText(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Image\t%s\n", imageTitle(r))
	if r.Platform != "" {
		fmt.Fprintf(tw, "Platform\t%s\n", r.Platform)
	}
	fmt.Fprintf(tw, "User\t%s\n", userText(r.User))
	fmt.Fprintf(tw, "Compressed\t%s\t(layers %s, config %s, manifest %s)\n", HumanSize(r.CompressedSize),
		HumanSize(r.CompressedSize-r.ConfigSize-r.ManifestSize), HumanSize(r.ConfigSize), HumanSize(r.ManifestSize))
	fmt.Fprintf(tw, "Uncompressed\t%s\t(%s)\n", HumanSize(r.UncompressedSize), plural(len(r.Layers), "layer"))
	fmt.Fprintf(tw, "Files\t%s\t(%s files, %s ELF executables)\n", HumanSize(r.FilesSize), Count(r.FileCount), Count(r.ELFExecutables))
	fmt.Fprintf(tw, "Hidden\t%s\t(%s copies deleted or overwritten by later layers)\n", HumanSize(r.HiddenSize), Count(r.HiddenCount))
	tw.Flush()

	fmt.Fprintln(w, "\nLayers")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tCOMPRESSED\tUNCOMPRESSED\tFILES\tHIDDEN\t\tCREATED BY")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t\t%s\n", l.Index, HumanSize(l.CompressedSize), HumanSize(l.UncompressedSize),
			Count(l.Files), HumanSize(l.HiddenSize), truncate(ShortCreatedBy(l.CreatedBy), 80))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nSize by top-level directory")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tFILES")
	for _, d := range r.Directories {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Path, HumanSize(d.Size), Count(d.Files))
	}
	tw.Flush()

	writeFiles(w, "Largest files", r.LargestFiles)
	if len(r.LargestHidden) > 0 {
		writeFiles(w, "Largest hidden copies", r.LargestHidden)
	}

	fmt.Fprintln(w, "\nAttack surface")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range r.Surface {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Category, findingCount(f), findingText(f))
	}
	fmt.Fprintf(tw, "elf executables\t%s\t\n", Count(r.ELFExecutables))
	tw.Flush()
}

func writeFiles(w io.Writer, title string, files []File) {
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tLAYER\tPATH")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", HumanSize(f.Size), f.Layer, f.Path)
	}
	tw.Flush()
}

func findingCount(f Finding) string {
	if f.Category == Root {
		if f.Present() {
			return "yes"
		}
		return "no"
	}
	return Count(f.Count)
}

// findingText is a one-line account of a finding: names, then the first paths.
func findingText(f Finding) string {
	if f.Category == Root {
		return f.Detail
	}
	if !f.Present() {
		return "-"
	}
	var parts []string
	if len(f.Names) > 0 && f.Category != Setuid && f.Category != Capabilities && f.Category != Secrets {
		parts = append(parts, strings.Join(f.Names, ", ")+":")
	}
	parts = append(parts, listPaths(f.Paths, maxTextPaths))
	return strings.Join(parts, " ")
}

func listPaths(paths []string, n int) string {
	if len(paths) <= n {
		return strings.Join(paths, " ")
	}
	return strings.Join(paths[:n], " ") + fmt.Sprintf(" … and %s more", Count(len(paths)-n))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WriteComparisonText writes c as a side-by-side table: sizes with their reduction, then
// every category with its counts and what is present in only one image.
func WriteComparisonText(w io.Writer, c *Comparison) error {
	ew := &errWriter{w: w}
	writeComparisonText(ew, c)
	if ew.err != nil {
		return fmt.Errorf("writing text comparison: %w", ew.err)
	}
	return nil
}

func writeComparisonText(w io.Writer, c *Comparison) {
	fmt.Fprintf(w, "A  %s\nB  %s\n\n", imageTitle(c.A), imageTitle(c.B))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tA\tB\tREDUCTION\t")
	for _, s := range c.Sizes {
		a, b := sizeCell(s.Metric, s.A), sizeCell(s.Metric, s.B)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", s.Metric, a, b, Percent(s.ReductionPercent))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACK SURFACE\tA\tB\tDIFFERENCE")
	for _, d := range c.Categories {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Category, deltaCount(d, d.A), deltaCount(d, d.B), deltaText(d))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nSize reduction: %s uncompressed, %s compressed\n",
		Percent(c.ReductionPercent), Percent(c.CompressedReductionPercent))
	fmt.Fprintf(w, "Only in A: %s\n", categoryList(c.OnlyInA))
	fmt.Fprintf(w, "Only in B: %s\n", categoryList(c.OnlyInB))
}

func sizeCell(metric string, v int64) string {
	switch metric {
	case MetricFileCount, MetricLayers, MetricELFExecutables:
		return Count(int(v))
	}
	return HumanSize(v)
}

func deltaCount(d CategoryDelta, n int) string {
	if d.Category == Root {
		if n > 0 {
			return "yes"
		}
		return "no"
	}
	return Count(n)
}

func deltaText(d CategoryDelta) string {
	var parts []string
	switch d.Status {
	case "only_a":
		parts = append(parts, "only in A")
	case "only_b":
		parts = append(parts, "only in B")
	}
	if len(d.NamesOnlyInA) > 0 {
		parts = append(parts, "A only: "+strings.Join(d.NamesOnlyInA, ", "))
	}
	if len(d.NamesOnlyInB) > 0 {
		parts = append(parts, "B only: "+strings.Join(d.NamesOnlyInB, ", "))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func categoryList(cs []Category) string {
	if len(cs) == 0 {
		return "none"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
