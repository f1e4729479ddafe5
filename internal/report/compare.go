package report

import (
	"fmt"
	"sort"
	"strings"
)

// Comparison sets two reports side by side: A is the image the reduction is measured from
// (e.g. the naive build), B the one it is measured to (e.g. the multistage build).
type Comparison struct {
	SchemaVersion int     `json:"schema_version"`
	A             *Report `json:"a"`
	B             *Report `json:"b"`
	// ReductionPercent is how much smaller B is than A, uncompressed: 100*(A-B)/A; negative
	// when B is larger, 0 when A is empty.
	ReductionPercent           float64 `json:"reduction_percent"`
	CompressedReductionPercent float64 `json:"compressed_reduction_percent"`
	// Sizes compares the size metrics one by one.
	Sizes []SizeDelta `json:"sizes"`
	// Categories compares every attack-surface category.
	Categories []CategoryDelta `json:"categories"`
	// OnlyInA lists the categories present in A and absent from B; OnlyInB the reverse.
	OnlyInA []Category `json:"only_in_a"`
	OnlyInB []Category `json:"only_in_b"`
}

// SizeDelta is one size metric of both images.
type SizeDelta struct {
	Metric           string  `json:"metric"`
	A                int64   `json:"a"`
	B                int64   `json:"b"`
	ReductionPercent float64 `json:"reduction_percent"`
}

// CategoryDelta is one attack-surface category of both images.
type CategoryDelta struct {
	Category Category `json:"category"`
	A        int      `json:"a"`
	B        int      `json:"b"`
	// Status is "only_a", "only_b", "both" or "neither".
	Status       string   `json:"status"`
	NamesOnlyInA []string `json:"names_only_in_a"`
	NamesOnlyInB []string `json:"names_only_in_b"`
}

// Size metric names used in SizeDelta.Metric.
const (
	MetricCompressed     = "compressed"
	MetricUncompressed   = "uncompressed"
	MetricFiles          = "files_size"
	MetricFileCount      = "file_count"
	MetricLayers         = "layers"
	MetricHidden         = "hidden_size"
	MetricELFExecutables = "elf_executables"
)

func reduction(a, b int64) float64 {
	if a == 0 {
		return 0
	}
	return 100 * float64(a-b) / float64(a)
}

// Compare sets a and b side by side.
func Compare(a, b *Report) *Comparison {
	c := &Comparison{
		SchemaVersion:              SchemaVersion,
		A:                          a,
		B:                          b,
		ReductionPercent:           reduction(a.UncompressedSize, b.UncompressedSize),
		CompressedReductionPercent: reduction(a.CompressedSize, b.CompressedSize),
		OnlyInA:                    []Category{},
		OnlyInB:                    []Category{},
	}
	for _, m := range []struct {
		name string
		a, b int64
	}{
		{MetricCompressed, a.CompressedSize, b.CompressedSize},
		{MetricUncompressed, a.UncompressedSize, b.UncompressedSize},
		{MetricFiles, a.FilesSize, b.FilesSize},
		{MetricFileCount, int64(a.FileCount), int64(b.FileCount)},
		{MetricLayers, int64(len(a.Layers)), int64(len(b.Layers))},
		{MetricHidden, a.HiddenSize, b.HiddenSize},
		{MetricELFExecutables, int64(a.ELFExecutables), int64(b.ELFExecutables)},
	} {
		c.Sizes = append(c.Sizes, SizeDelta{Metric: m.name, A: m.a, B: m.b, ReductionPercent: reduction(m.a, m.b)})
	}
	for _, cat := range Categories {
		fa, fb := a.Finding(cat), b.Finding(cat)
		d := CategoryDelta{Category: cat, A: fa.Count, B: fb.Count,
			NamesOnlyInA: minus(fa.Names, fb.Names), NamesOnlyInB: minus(fb.Names, fa.Names)}
		switch {
		case fa.Present() && fb.Present():
			d.Status = "both"
		case fa.Present():
			d.Status = "only_a"
			c.OnlyInA = append(c.OnlyInA, cat)
		case fb.Present():
			d.Status = "only_b"
			c.OnlyInB = append(c.OnlyInB, cat)
		default:
			d.Status = "neither"
		}
		c.Categories = append(c.Categories, d)
	}
	return c
}

// minus returns the sorted elements of a that are not in b.
func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	out := []string{}
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
			in[s] = true
		}
	}
	sort.Strings(out)
	return out
}

// Summary is the end-of-build account: the final image, and what the stages that were
// built and discarded held that the final image does not.
type Summary struct {
	Image            string `json:"image,omitempty"`
	CompressedSize   int64  `json:"compressed_size"`
	UncompressedSize int64  `json:"uncompressed_size"`
	Layers           int    `json:"layers"`
	ELFExecutables   int    `json:"elf_executables"`
	StagesBuilt      int    `json:"stages_built"`
	StagesDiscarded  int    `json:"stages_discarded"`
	// LeftBehind lists what the discarded stages held and the final image does not:
	// program names ("gcc", "apt") and counts ("1,284 headers").
	LeftBehind []string `json:"left_behind"`
	// Remaining lists the attack surface left in the final image, one item per category.
	Remaining []string `json:"remaining"`
}

// Summarize accounts for a build whose final image is final and whose other built stages
// are discarded (nil entries are ignored).
func Summarize(final *Report, discarded []*Report) Summary {
	s := Summary{
		Image:            final.Image,
		CompressedSize:   final.CompressedSize,
		UncompressedSize: final.UncompressedSize,
		Layers:           len(final.Layers),
		ELFExecutables:   final.ELFExecutables,
		LeftBehind:       []string{},
		Remaining:        []string{},
	}
	var gone []*Report
	for _, d := range discarded {
		if d != nil {
			gone = append(gone, d)
		}
	}
	s.StagesDiscarded = len(gone)
	s.StagesBuilt = len(gone) + 1
	for _, cat := range Categories {
		if cat == Root {
			continue
		}
		ff := final.Finding(cat)
		var names, paths []string
		for _, d := range gone {
			fd := d.Finding(cat)
			names = append(names, fd.Names...)
			paths = append(paths, fd.Paths...)
		}
		switch cat {
		case Compilers, PackageManagers, Shells:
			s.LeftBehind = append(s.LeftBehind, minus(names, ff.Names)...)
		default:
			if n := len(minus(paths, ff.Paths)); n > 0 {
				s.LeftBehind = append(s.LeftBehind, countNoun(n, cat))
			}
		}
	}
	for _, f := range final.Surface {
		if !f.Present() {
			continue
		}
		switch f.Category {
		case Compilers, PackageManagers, Shells:
			s.Remaining = append(s.Remaining, fmt.Sprintf("%s: %s", f.Category, strings.Join(f.Names, ", ")))
		case Root:
			s.Remaining = append(s.Remaining, "runs as root")
		default:
			s.Remaining = append(s.Remaining, countNoun(f.Count, f.Category))
		}
	}
	return s
}

// countNoun phrases a count of paths in a category: "1,284 headers", "1 setuid file".
func countNoun(n int, c Category) string {
	noun := map[Category][2]string{
		Headers:       {"header", "headers"},
		Setuid:        {"setuid/setgid file", "setuid/setgid files"},
		WorldWritable: {"world-writable path", "world-writable paths"},
		Capabilities:  {"file with capabilities", "files with capabilities"},
		Secrets:       {"secret", "secrets"},
	}[c]
	if noun[0] == "" {
		noun = [2]string{string(c), string(c)}
	}
	if n == 1 {
		return "1 " + noun[0]
	}
	return Count(n) + " " + noun[1]
}

// Text renders the summary in a few lines for stderr.
func (s Summary) Text() string {
	var b strings.Builder
	name := s.Image
	if name == "" {
		name = "final image"
	}
	fmt.Fprintf(&b, "%s: %s compressed, %s uncompressed, %s, %s\n",
		name, HumanSize(s.CompressedSize), HumanSize(s.UncompressedSize), plural(s.Layers, "layer"), plural(s.ELFExecutables, "ELF executable"))
	fmt.Fprintf(&b, "stages: %d built, %d discarded\n", s.StagesBuilt, s.StagesDiscarded)
	if s.StagesDiscarded > 0 {
		left := "nothing the final image lacks"
		if len(s.LeftBehind) > 0 {
			left = strings.Join(s.LeftBehind, ", ")
		}
		fmt.Fprintf(&b, "left behind in discarded stages: %s\n", left)
	}
	rem := "none"
	if len(s.Remaining) > 0 {
		rem = strings.Join(s.Remaining, "; ")
	}
	fmt.Fprintf(&b, "attack surface left: %s\n", rem)
	return b.String()
}

// plural phrases n things: "1 layer", "3 layers", "1,284 headers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return Count(n) + " " + noun + "s"
}
