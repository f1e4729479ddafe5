package report

import (
	"fmt"
	"html/template"
	"io"
	"sync"
)

// The HTML form is one self-contained page: inline CSS and inline SVG charts, no scripts,
// no images, no fonts, no links to anything outside the page.

const (
	chartWidth  = 760
	chartLabelW = 230
	chartBarW   = 400
	chartRowH   = 24
	chartBarH   = 18
	chartMaxBar = 25
)

type htmlBar struct {
	Label, Value, Title string
	Class               string
	Y, W, TextY, ValueX int
}

type htmlChart struct {
	ID, Title     string
	Width, Height int
	LabelX, BarX  int
	Bars          []htmlBar
	Omitted       int
}

type htmlReport struct {
	Label      string // "A", "B" or ""
	R          *Report
	LayerChart htmlChart
	DirChart   htmlChart
}

type htmlPage struct {
	Title     string
	Reports   []htmlReport
	Cmp       *Comparison
	SizeChart *htmlChart
}

// bar describes one bar before layout.
type bar struct {
	label, title, class string
	v, max              int64
	value               string
}

func newChart(id, title string, bars []bar) htmlChart {
	c := htmlChart{ID: id, Title: title, Width: chartWidth, LabelX: chartLabelW - 8, BarX: chartLabelW}
	if len(bars) > chartMaxBar {
		c.Omitted = len(bars) - chartMaxBar
		bars = bars[:chartMaxBar]
	}
	for i, b := range bars {
		w := 0
		if b.max > 0 {
			w = int(float64(chartBarW) * float64(b.v) / float64(b.max))
		}
		if w == 0 && b.v > 0 {
			w = 1
		}
		y := 4 + i*chartRowH
		c.Bars = append(c.Bars, htmlBar{Label: truncate(b.label, 34), Value: b.value, Title: b.title, Class: b.class,
			Y: y, W: w, TextY: y + chartBarH - 5, ValueX: chartLabelW + w + 6})
	}
	c.Height = 8 + len(c.Bars)*chartRowH
	return c
}

func reportCharts(label string, r *Report) htmlReport {
	h := htmlReport{Label: label, R: r}
	var maxL, maxD int64
	for _, l := range r.Layers {
		maxL = max(maxL, l.UncompressedSize)
	}
	for _, d := range r.Directories {
		maxD = max(maxD, d.Size)
	}
	var lb, db []bar
	for _, l := range r.Layers {
		cb := ShortCreatedBy(l.CreatedBy)
		lb = append(lb, bar{label: fmt.Sprintf("#%d %s", l.Index, cb), title: cb, v: l.UncompressedSize, max: maxL,
			value: HumanSize(l.UncompressedSize), class: "layer"})
	}
	for _, d := range r.Directories {
		db = append(db, bar{label: d.Path, title: d.Path, v: d.Size, max: maxD, value: HumanSize(d.Size), class: "dir"})
	}
	id := "r" + label
	h.LayerChart = newChart(id+"-layers", "Size by layer (uncompressed)", lb)
	h.DirChart = newChart(id+"-dirs", "Size by top-level directory", db)
	return h
}

// WriteHTML writes r as one self-contained HTML page.
func WriteHTML(w io.Writer, r *Report) error {
	p := htmlPage{Title: "slimbuild report: " + titleName(r), Reports: []htmlReport{reportCharts("", r)}}
	return writePage(w, p)
}

// WriteComparisonHTML writes c as one self-contained HTML page: the comparison table and a
// size chart, then each image's report.
func WriteComparisonHTML(w io.Writer, c *Comparison) error {
	p := htmlPage{
		Title:   "slimbuild comparison: " + titleName(c.A) + " vs " + titleName(c.B),
		Reports: []htmlReport{reportCharts("A", c.A), reportCharts("B", c.B)},
		Cmp:     c,
	}
	var bars []bar
	for _, s := range c.Sizes {
		if s.Metric != MetricCompressed && s.Metric != MetricUncompressed && s.Metric != MetricFiles {
			continue
		}
		m := max(s.A, s.B)
		bars = append(bars,
			bar{label: s.Metric + " A", title: titleName(c.A), v: s.A, max: m, value: HumanSize(s.A), class: "a"},
			bar{label: s.Metric + " B", title: titleName(c.B), v: s.B, max: m, value: HumanSize(s.B), class: "b"})
	}
	ch := newChart("cmp-sizes", "Size, A against B", bars)
	p.SizeChart = &ch
	return writePage(w, p)
}

func titleName(r *Report) string {
	if r.Image != "" {
		return r.Image
	}
	return r.Digest
}

func writePage(w io.Writer, p htmlPage) error {
	if err := pageTemplate().Execute(w, p); err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	return nil
}

// pageTemplate is parsed when a page is first written, not when the
// program starts: most runs never write one.
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"size":      HumanSize,
		"count":     Count,
		"percent":   Percent,
		"short":     ShortCreatedBy,
		"user":      userText,
		"fcount":    findingCount,
		"dcount":    deltaCount,
		"deltatext": deltaText,
		"cats":      categoryList,
		"sizecell":  sizeCell,
	}).Parse(pageHTML))
})

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#1d2430;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d8dde6;padding-bottom:.2em}
h3{font-size:1em;margin-top:1.2em}
code,td.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.25em .7em;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.present{color:#a4161a;font-weight:600}.absent{color:#2b8a3e}
.headline{font-size:1.3em;font-weight:600;color:#2b8a3e}
svg{display:block;margin:.4em 0}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}
rect.layer{fill:#3b6fb6}rect.dir{fill:#6a9b3b}rect.a{fill:#c0582b}rect.b{fill:#2b8a3e}
.muted{color:#6b7280}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Cmp}}
<section id="comparison">
<h2>Comparison</h2>
<p>A: <code>{{.A.Image}}</code> <span class="muted">{{.A.Digest}}</span><br>
B: <code>{{.B.Image}}</code> <span class="muted">{{.B.Digest}}</span></p>
<p class="headline" id="reduction">Size reduction: {{percent .ReductionPercent}} uncompressed, {{percent .CompressedReductionPercent}} compressed</p>
<table id="cmp-sizes-table">
<tr><th></th><th class="num">A</th><th class="num">B</th><th class="num">reduction</th></tr>
{{range .Sizes}}<tr><td>{{.Metric}}</td><td class="num">{{sizecell .Metric .A}}</td><td class="num">{{sizecell .Metric .B}}</td><td class="num">{{percent .ReductionPercent}}</td></tr>
{{end}}</table>
{{end}}
{{with .SizeChart}}{{template "chart" .}}{{end}}
{{with .Cmp}}
<table id="cmp-surface-table">
<tr><th>attack surface</th><th class="num">A</th><th class="num">B</th><th>difference</th></tr>
{{range .Categories}}<tr><td>{{.Category}}</td><td class="num {{if .A}}present{{else}}absent{{end}}">{{dcount . .A}}</td><td class="num {{if .B}}present{{else}}absent{{end}}">{{dcount . .B}}</td><td>{{deltatext .}}</td></tr>
{{end}}</table>
<p>Only in A: {{cats .OnlyInA}}<br>Only in B: {{cats .OnlyInB}}</p>
</section>
{{end}}
{{range .Reports}}{{template "report" .}}{{end}}
</body>
</html>
{{define "chart"}}<h3>{{.Title}}</h3>
<svg id="{{.ID}}" width="{{.Width}}" height="{{.Height}}" role="img" aria-label="{{.Title}}">
{{$c := .}}{{range .Bars}}<g><title>{{.Title}}</title><text x="{{$c.LabelX}}" y="{{.TextY}}" text-anchor="end">{{.Label}}</text><rect class="{{.Class}}" x="{{$c.BarX}}" y="{{.Y}}" width="{{.W}}" height="18"></rect><text x="{{.ValueX}}" y="{{.TextY}}">{{.Value}}</text></g>
{{end}}</svg>
{{if .Omitted}}<p class="muted">{{.Omitted}} more not drawn</p>{{end}}
{{end}}
{{define "report"}}<section class="report" id="report{{.Label}}">
<h2>{{if .Label}}{{.Label}}: {{end}}{{if .R.Image}}{{.R.Image}}{{else}}{{.R.Digest}}{{end}}</h2>
<table class="summary">
<tr><td>digest</td><td><code>{{.R.Digest}}</code></td></tr>
{{if .R.Platform}}<tr><td>platform</td><td>{{.R.Platform}}</td></tr>{{end}}
<tr><td>user</td><td>{{user .R.User}}</td></tr>
<tr><td>compressed</td><td class="num" data-bytes="{{.R.CompressedSize}}">{{size .R.CompressedSize}}</td></tr>
<tr><td>uncompressed</td><td class="num" data-bytes="{{.R.UncompressedSize}}">{{size .R.UncompressedSize}}</td></tr>
<tr><td>files</td><td class="num">{{size .R.FilesSize}} in {{count .R.FileCount}} files</td></tr>
<tr><td>hidden by later layers</td><td class="num">{{size .R.HiddenSize}} in {{count .R.HiddenCount}} copies</td></tr>
<tr><td>ELF executables</td><td class="num">{{count .R.ELFExecutables}}</td></tr>
<tr><td>layers</td><td class="num">{{len .R.Layers}}</td></tr>
</table>
{{template "chart" .LayerChart}}
<table class="layers">
<tr><th class="num">#</th><th class="num">compressed</th><th class="num">uncompressed</th><th class="num">files</th><th class="num">hidden</th><th>created by</th></tr>
{{range .R.Layers}}<tr><td class="num">{{.Index}}</td><td class="num">{{size .CompressedSize}}</td><td class="num">{{size .UncompressedSize}}</td><td class="num">{{count .Files}}</td><td class="num">{{size .HiddenSize}}</td><td><code>{{short .CreatedBy}}</code></td></tr>
{{end}}</table>
{{template "chart" .DirChart}}
<h3>Largest files</h3>
<table class="files"><tr><th class="num">size</th><th class="num">layer</th><th>path</th></tr>
{{range .R.LargestFiles}}<tr><td class="num">{{size .Size}}</td><td class="num">{{.Layer}}</td><td class="path">{{.Path}}</td></tr>
{{end}}</table>
{{if .R.LargestHidden}}<h3>Largest hidden copies</h3>
<table class="files"><tr><th class="num">size</th><th class="num">layer</th><th>path</th></tr>
{{range .R.LargestHidden}}<tr><td class="num">{{size .Size}}</td><td class="num">{{.Layer}}</td><td class="path">{{.Path}}</td></tr>
{{end}}</table>{{end}}
<h3>Attack surface</h3>
<table class="surface"><tr><th>category</th><th class="num">found</th><th>names</th><th>paths</th></tr>
{{range .R.Surface}}<tr data-category="{{.Category}}"><td>{{.Category}}</td><td class="num {{if .Count}}present{{else}}absent{{end}}">{{fcount .}}</td><td>{{range $i, $n := .Names}}{{if $i}}, {{end}}{{$n}}{{end}}{{.Detail}}</td><td class="path">{{range $i, $p := .Paths}}{{if lt $i 50}}{{$p}}<br>{{end}}{{end}}{{if gt (len .Paths) 50}}<span class="muted">and {{count (len .Paths)}} in all</span>{{end}}</td></tr>
{{end}}</table>
</section>
{{end}}`
