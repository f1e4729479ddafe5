package report

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerSource is one layer whose files a report reads. ID names the layer's content: two
// sources with the same ID must give the same tar (a diffID, or the identity of a snapshot).
// Open returns the layer as an uncompressed tar; the report reads it to its end and closes it.
// A source with an empty ID is read every time and never cached.
type LayerSource struct {
	ID   string
	Open func() (io.ReadCloser, error)
}

// Cache keeps layer analyses between runs. GetCache returns an error when key holds
// nothing; PutCache replaces what key held. Keys are 64 lowercase hex characters. A value
// holds only metadata of the layer's entries (paths, types, modes, sizes, link targets,
// a few flags), never their contents. *store.Store satisfies it.
type Cache interface {
	GetCache(key string) ([]byte, error)
	PutCache(key string, val []byte) error
}

// layerKeyPrefix versions the cached form: change it when what scanLayer keeps changes.
const layerKeyPrefix = "slimbuild report layer v1\x00"

// LayerKey is the cache key of the analysis of the layer named id.
func LayerKey(id string) string {
	h := sha256.Sum256([]byte(layerKeyPrefix + id))
	return hex.EncodeToString(h[:])
}

// LayerAnalysis is the analysis of one layer's tar, made by ScanLayer while something
// else reads the same stream (an import unpacking it), and kept by Keep under the
// layer's ID once that is known, so that no report reads the layer again.
type LayerAnalysis struct{ scan *layerScan }

// ScanLayer analyses the uncompressed layer tar r, reading it to its end. Memory grows
// with the tar's entries, never with their contents.
func ScanLayer(r io.Reader) (*LayerAnalysis, error) {
	ls, err := scanLayer(r)
	if err != nil {
		return nil, err
	}
	return &LayerAnalysis{scan: ls}, nil
}

// Keep puts a in c as the analysis of the layer named id (see LayerSource): id must name
// exactly the tar that a was made from.
func (a *LayerAnalysis) Keep(c Cache, id string) error {
	if id == "" {
		return fmt.Errorf("keeping a layer analysis: no layer ID")
	}
	return c.PutCache(LayerKey(id), encodeScan(a.scan))
}

// ImageLayers describes img's own layers as sources: each named by its diffID and read
// through its Uncompressed stream.
func ImageLayers(img v1.Image) ([]LayerSource, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	out := make([]LayerSource, len(ls))
	for i, l := range ls {
		id, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("reading diff ID of layer %d: %w", i, err)
		}
		out[i] = LayerSource{ID: id.String(), Open: l.Uncompressed}
	}
	return out, nil
}

// AnalyzeLayers reports on the filesystem that layers make, bottom first. When img is not
// nil it is the image those layers belong to (one source per layer of its manifest, in the
// same order): its manifest and config give the digests, the compressed sizes, the user,
// the platform and the history, and its layers are never read. When img is nil (a stage
// that has no manifest) those fields stay empty and the root finding reads "USER is not set".
//
// A layer is read only when opts.Cache holds no valid analysis for its ID; what is read is
// put in the cache. A cache entry that cannot be decoded is ignored and the layer read again.
// The result equals what AnalyzeContext reports for the same image.
func AnalyzeLayers(ctx context.Context, img v1.Image, layers []LayerSource, opts Options) (*Report, error) {
	lr := newLayerReader(opts.Cache)
	defer lr.puts.Wait()
	return lr.analyze(ctx, img, layers, opts)
}

// A Build is a finished build as its summary sees it.
type Build struct {
	// Image is the final image: its manifest and config.
	Image v1.Image
	// Layers are the final image's layers, bottom first, read instead of Image's blobs.
	Layers []LayerSource
	// Discarded holds the layers of every other stage built, each bottom first.
	Discarded [][]LayerSource
}

// SummarizeBuild analyses a build's final image and its discarded stages (see
// AnalyzeLayers) and summarises them (see Summarize). A layer that several stages share is
// read, or taken from the cache, once.
//
// With opts.Cache, the finished summary is kept too, under the identities of every layer
// involved: an unchanged rebuild reads one cache value and merges nothing.
func SummarizeBuild(ctx context.Context, b Build, opts Options) (*Report, Summary, error) {
	key := summaryKey(b, opts)
	if key != "" {
		if final, sum, ok := getSummary(opts.Cache, key); ok {
			return final, sum, nil
		}
	}
	final, sum, err := summarizeBuild(ctx, b, opts)
	if err == nil && key != "" {
		putSummary(opts.Cache, key, final, sum)
	}
	return final, sum, err
}

func summarizeBuild(ctx context.Context, b Build, opts Options) (*Report, Summary, error) {
	lr := newLayerReader(opts.Cache)
	if opts.Prefetch != nil {
		lr = opts.Prefetch.reader()
	}
	defer lr.puts.Wait()
	final, err := lr.analyze(ctx, b.Image, b.Layers, opts)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("analysing the final image: %w", err)
	}
	var discarded []*Report
	for i, layers := range b.Discarded {
		r, err := lr.analyze(ctx, nil, layers, Options{Top: -1, Prefetch: opts.Prefetch})
		if err != nil {
			return nil, Summary{}, fmt.Errorf("analysing discarded stage %d: %w", i, err)
		}
		discarded = append(discarded, r)
	}
	return final, Summarize(final, discarded), nil
}

// layerReader gets layer analyses by ID: from those it has already, from the cache, or by
// reading the layer.
type layerReader struct {
	cache Cache
	seen  map[string]*layerScan
	// puts are the cache writes under way: they overlap the merge, and the
	// caller waits for them before it returns.
	puts sync.WaitGroup
}

func newLayerReader(c Cache) *layerReader {
	return &layerReader{cache: c, seen: map[string]*layerScan{}}
}

func (lr *layerReader) scan(i int, l LayerSource) (*layerScan, error) {
	if ls, ok := lr.seen[l.ID]; ok && l.ID != "" {
		return ls, nil
	}
	key := LayerKey(l.ID)
	if lr.cache != nil && l.ID != "" {
		if b, err := lr.cache.GetCache(key); err == nil {
			if ls, err := decodeScan(b); err == nil {
				lr.seen[l.ID] = ls
				return ls, nil
			}
		}
	}
	if l.Open == nil {
		return nil, fmt.Errorf("layer %d (%s): no way to read it", i, l.ID)
	}
	rc, err := l.Open()
	if err != nil {
		return nil, fmt.Errorf("opening layer %d (%s): %w", i, l.ID, err)
	}
	ls, err := scanLayer(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer %d (%s): %w", i, l.ID, err)
	}
	if l.ID == "" {
		return ls, nil // nothing to name it by
	}
	lr.seen[l.ID] = ls
	if lr.cache != nil {
		lr.puts.Add(1)
		go func() {
			defer lr.puts.Done()
			_ = lr.cache.PutCache(key, encodeScan(ls)) // a lost entry only costs a read next time
		}()
	}
	return ls, nil
}

func (lr *layerReader) analyze(ctx context.Context, img v1.Image, layers []LayerSource, opts Options) (*Report, error) {
	top := opts.Top
	if top == 0 {
		top = DefaultTop
	}
	r := &Report{SchemaVersion: SchemaVersion, Image: opts.Name, Layers: make([]Layer, len(layers))}
	var createdBy []string
	if img != nil {
		var cfg *v1.ConfigFile
		var err error
		if r, cfg, err = newReport(img, len(layers), opts); err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("parsing manifest: %w", err)
		}
		if len(m.Layers) != len(layers) {
			return nil, fmt.Errorf("the image has %d layers, %d given to read", len(m.Layers), len(layers))
		}
		for i, d := range m.Layers {
			r.Layers[i] = Layer{Index: i, Digest: d.Digest.String(), MediaType: string(d.MediaType), CompressedSize: d.Size}
			if i < len(cfg.RootFS.DiffIDs) {
				r.Layers[i].DiffID = cfg.RootFS.DiffIDs[i].String()
			}
			r.CompressedSize += d.Size
		}
		createdBy = layerHistory(cfg.History, len(layers))
	}
	u, merged := newUnionFS(len(layers), top), 0
	if opts.Prefetch != nil {
		if pu, n := opts.Prefetch.take(layers, top); pu != nil {
			u, merged = pu, n
		}
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ls, err := lr.scan(i, l)
		if err != nil {
			return nil, err
		}
		li := &r.Layers[i]
		li.Index = i
		ls.describe(li)
		if createdBy != nil {
			li.CreatedBy = createdBy[i]
		}
		r.UncompressedSize += li.UncompressedSize
		if i >= merged {
			u.apply(i, ls)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(layers))
		}
	}
	u.finish(r, r.User, top)
	return r, nil
}

// summaryKeyPrefix versions the cached summaries: change it when Report or Summary change.
const summaryKeyPrefix = "slimbuild report summary v1\x00"

// summaryKey names a build's summary by everything it is made of: the final image's
// manifest, the options that shape the report, and every layer's identity, stage by stage.
// It is empty when the summary cannot be named (no cache, no image, a layer without ID).
func summaryKey(b Build, opts Options) string {
	if opts.Cache == nil || b.Image == nil {
		return ""
	}
	d, err := b.Image.Digest()
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s%s\x00%s\x00%d\x00", summaryKeyPrefix, d, opts.Name, opts.Top)
	for _, stage := range append([][]LayerSource{b.Layers}, b.Discarded...) {
		for _, l := range stage {
			if l.ID == "" {
				return ""
			}
			fmt.Fprintf(h, "%s\x00", l.ID)
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))
}

type cachedSummary struct {
	Final   *Report `json:"final"`
	Summary Summary `json:"summary"`
}

// getSummary reads a summary putSummary kept; ok is false for anything else.
func getSummary(c Cache, key string) (*Report, Summary, bool) {
	b, err := c.GetCache(key)
	if err != nil {
		return nil, Summary{}, false
	}
	var cs cachedSummary
	zr := flate.NewReader(bytes.NewReader(b))
	defer zr.Close()
	// A summary is a few KB; anything past the limit is not one of ours.
	if err := json.NewDecoder(io.LimitReader(zr, maxSummary)).Decode(&cs); err != nil || cs.Final == nil {
		return nil, Summary{}, false
	}
	return cs.Final, cs.Summary, true
}

const maxSummary = 16 << 20

// putSummary keeps a summary, deflated: smaller, and free of "sha256:…" text, which the
// store's GC would take for references keeping the image's blobs alive.
func putSummary(c Cache, key string, final *Report, sum Summary) {
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return
	}
	if json.NewEncoder(zw).Encode(cachedSummary{Final: final, Summary: sum}) != nil || zw.Close() != nil {
		return
	}
	_ = c.PutCache(key, buf.Bytes()) // derived data: a failed write costs a recomputation
}
