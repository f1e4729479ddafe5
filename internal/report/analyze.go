package report

import (
	"context"
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultTop is the number of largest files a report lists when Options.Top is zero.
const DefaultTop = 10

// Options tunes Analyze. The zero value is ready to use.
type Options struct {
	// Name is how the report names the image (a store name, a path, a reference).
	Name string
	// Top is how many of the largest files, and of the largest hidden copies, to list:
	// DefaultTop when zero, none when negative.
	Top int
	// Progress, if set, is called after each layer is read with the number of layers done
	// and the total. It is called from the goroutine running Analyze.
	Progress func(done, total int)
	// Cache, if set, keeps each layer's analysis under the layer's identity, so that
	// AnalyzeLayers and SummarizeBuild read only layers they have not seen before.
	// Analyze and AnalyzeContext do not use it.
	Cache Cache
	// Prefetch, if set, is where SummarizeBuild finds the bases it merged
	// while the build ran (see Prefetch); it then reads layers through it.
	Prefetch *Prefetch
}

// Analyze reads img and reports its size and attack surface. Each layer's uncompressed
// stream is read once, from start to end, and never held in memory.
func Analyze(img v1.Image, opts Options) (*Report, error) {
	return AnalyzeContext(context.Background(), img, opts)
}

// AnalyzeContext is Analyze, stopping between layers when ctx is done.
func AnalyzeContext(ctx context.Context, img v1.Image, opts Options) (*Report, error) {
	top := opts.Top
	if top == 0 {
		top = DefaultTop
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	r, cfg, err := newReport(img, len(layers), opts)
	if err != nil {
		return nil, err
	}
	createdBy := layerHistory(cfg.History, len(layers))

	u := newUnionFS(len(layers), top)
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		li, ls, err := readLayer(i, l)
		if err != nil {
			return nil, err
		}
		li.CreatedBy = createdBy[i]
		r.Layers[i] = li
		r.CompressedSize += li.CompressedSize
		r.UncompressedSize += li.UncompressedSize
		u.apply(i, ls)
		if opts.Progress != nil {
			opts.Progress(i+1, len(layers))
		}
	}
	u.finish(r, cfg.Config.User, top)
	return r, nil
}

// newReport starts the report of img, which has n layers: everything the manifest and
// the config say.
func newReport(img v1.Image, n int, opts Options) (*Report, *v1.ConfigFile, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading manifest: %w", err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("parsing config: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("computing image digest: %w", err)
	}
	r := &Report{
		SchemaVersion: SchemaVersion,
		Image:         opts.Name,
		Digest:        digest.String(),
		User:          cfg.Config.User,
		ManifestSize:  int64(len(rawManifest)),
		ConfigSize:    int64(len(rawConfig)),
		Layers:        make([]Layer, n),
	}
	if cfg.OS != "" {
		r.Platform = cfg.OS + "/" + cfg.Architecture
		if cfg.Variant != "" {
			r.Platform += "/" + cfg.Variant
		}
	}
	r.CompressedSize = r.ManifestSize + r.ConfigSize
	return r, cfg, nil
}

// finish walks the final filesystem once and fills r's file sizes, directories, largest
// files, hidden accounting and attack surface.
func (u *unionFS) finish(r *Report, user string, top int) {
	for i := range r.Layers {
		if i < len(u.hiddenBy) {
			r.Layers[i].HiddenSize = u.hiddenBy[i]
		}
	}
	r.HiddenSize, r.HiddenCount, r.LargestHidden = u.hiddenSize, u.hiddenCount, u.hidden.list()
	largest := newTopFiles(top)
	dirs := map[string]*DirSize{}
	f := newFinder()
	var walk func(n *node, p string, topDir *DirSize)
	walk = func(n *node, p string, topDir *DirSize) {
		if n.kind == kindReg {
			r.FileCount++
			r.FilesSize += n.size
			largest.add(File{Path: p, Size: n.size, Layer: n.layer})
			topDir.Size += n.size
			topDir.Files++
		}
		if f.classify(u, n, p) {
			r.ELFExecutables++
		}
		// In any order: every finding is sorted once the walk is done.
		for _, c := range n.children {
			walk(c, p+"/"+c.name, topDir)
		}
	}
	for _, c := range u.root.children {
		d := &DirSize{Path: "/" + c.name}
		dirs[d.Path] = d
		walk(c, d.Path, d)
	}
	f.databases(u)
	r.LargestFiles = largest.list()
	r.Directories = make([]DirSize, 0, len(dirs))
	for _, d := range dirs {
		if d.Files > 0 {
			r.Directories = append(r.Directories, *d)
		}
	}
	sort.Slice(r.Directories, func(i, j int) bool {
		a, b := r.Directories[i], r.Directories[j]
		if a.Size != b.Size {
			return a.Size > b.Size
		}
		return a.Path < b.Path
	})
	r.Surface = f.findings(user)
}

// readLayer describes layer i and scans its uncompressed stream.
func readLayer(i int, l v1.Layer) (Layer, *layerScan, error) {
	li := Layer{Index: i}
	d, err := l.Digest()
	if err != nil {
		return li, nil, fmt.Errorf("reading digest of layer %d: %w", i, err)
	}
	li.Digest = d.String()
	if id, err := l.DiffID(); err == nil {
		li.DiffID = id.String()
	}
	if mt, err := l.MediaType(); err == nil {
		li.MediaType = string(mt)
	}
	if li.CompressedSize, err = l.Size(); err != nil {
		return li, nil, fmt.Errorf("reading size of layer %d (%s): %w", i, li.Digest, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return li, nil, fmt.Errorf("opening layer %d (%s): %w", i, li.Digest, err)
	}
	defer rc.Close()
	ls, err := scanLayer(rc)
	if err != nil {
		return li, nil, fmt.Errorf("reading layer %d (%s): %w", i, li.Digest, err)
	}
	ls.describe(&li)
	return li, ls, nil
}

// describe fills in what the layer's tar says of it.
func (ls *layerScan) describe(li *Layer) {
	li.UncompressedSize = ls.bytes
	li.FilesSize = ls.filesSize
	li.Files = ls.files
	li.Entries = ls.tarEnts
	li.Whiteouts = len(ls.whiteouts) + len(ls.opaques)
}

// layerHistory matches the history entries that made a layer (not empty_layer) to layers in
// order; layers without one get "".
func layerHistory(h []v1.History, layers int) []string {
	out := make([]string, layers)
	i := 0
	for _, e := range h {
		if e.EmptyLayer {
			continue
		}
		if i >= layers {
			break
		}
		out[i] = e.CreatedBy
		if out[i] == "" {
			out[i] = e.Comment
		}
		i++
	}
	return out
}

// ShortCreatedBy trims the shell wrapper Docker-style builders put around instructions:
// "/bin/sh -c #(nop)  CMD [...]" → "CMD [...]", "/bin/sh -c apt-get ..." → "RUN apt-get ...".
func ShortCreatedBy(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "/bin/sh -c #(nop)"); ok {
		return strings.TrimSpace(rest)
	}
	if rest, ok := strings.CutPrefix(s, "/bin/sh -c "); ok {
		return "RUN " + strings.TrimSpace(rest)
	}
	return strings.Join(strings.Fields(s), " ")
}
