package report

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// memCache is a Cache in memory. Its methods may be called from several goroutines;
// tests read the map directly only once the analysis has returned.
type memCache map[string][]byte

var memCacheMu sync.Mutex

var _ Cache = memCache(nil)

var errMiss = errors.New("not in the cache")

func (c memCache) GetCache(key string) ([]byte, error) {
	memCacheMu.Lock()
	defer memCacheMu.Unlock()
	if v, ok := c[key]; ok {
		return append([]byte(nil), v...), nil
	}
	return nil, errMiss
}

func (c memCache) PutCache(key string, val []byte) error {
	memCacheMu.Lock()
	defer memCacheMu.Unlock()
	c[key] = append([]byte(nil), val...)
	return nil
}

// opens counts, by layer ID, how often sources are opened.
type opens map[string]int

// sources describes img's layers as sources that count their opens in o.
func sources(t testing.TB, img v1.Image, o opens) []LayerSource {
	t.Helper()
	ls, err := ImageLayers(img)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ls {
		open, id := ls[i].Open, ls[i].ID
		ls[i].Open = func() (io.ReadCloser, error) { o[id]++; return open() }
	}
	return ls
}

func link(name, target string) tf { return tf{name: name, typ: tar.TypeLink, link: target} }

// equivalenceImages are images whose merged per-layer analysis must equal the whole-image one.
func equivalenceImages(t *testing.T) map[string]v1.Image {
	imgs := map[string]v1.Image{
		"planted": buildImage(t, "", plantedLayers()...),
		"whiteouts and replaced files": buildImage(t, "app", testLayer{files: []tf{
			dir("etc/", 0o755), file("etc/a", "aaaa", 0), file("etc/b", "bb", 0), file("etc/c", "c", 0),
			dir("usr/lib/", 0o755), file("usr/lib/x.so", elf(300), 0o755),
		}}, testLayer{createdBy: "RUN rm", files: []tf{
			whiteout("etc/.wh.a"), file("etc/b", "replaced, longer", 0), whiteout("usr/.wh.lib"),
			file("usr/lib/y.so", elf(50), 0o644),
		}}, testLayer{createdBy: "RUN replace a dir by a file", files: []tf{
			file("usr/lib", "now a file", 0), file("etc/a", "back", 0o4755),
		}}),
		"opaque dirs": buildImage(t, "1000:1000", testLayer{files: []tf{
			dir("opt/", 0o755), dir("opt/d/", 0o777), file("opt/d/old", strings.Repeat("o", 99), 0),
			file("opt/d/sub/deep", "deep", 0), file("opt/keep", "k", 0),
		}}, testLayer{files: []tf{
			dir("opt/d/", 0o755), file("opt/d/.wh..wh..opq", "", 0), file("opt/d/new", "n", 0),
		}}, testLayer{files: []tf{
			file("opt/d/.wh..wh..opq", "", 0), file("opt/.wh..wh..opq", "", 0), file("opt/fresh", "f", 0),
		}}),
		"hard and symbolic links": buildImage(t, "root", testLayer{files: []tf{
			dir("usr/bin/", 0o755), file("usr/bin/python3.11", elf(500), 0o755),
			link("usr/bin/python3", "usr/bin/python3.11"), symlink("bin", "usr/bin"),
			file("usr/include/a.h", "x", 0), link("usr/include/b.h", "usr/include/a.h"),
		}}, testLayer{files: []tf{
			file("bin/gcc", elf(40), 0o755), // through the symlinked parent
			whiteout("usr/bin/.wh.python3.11"),
			link("usr/bin/cc", "bin/gcc"),
			file("home/u/.ssh/id_ed25519", pemKey, 0o600),
		}}),
		"empty layer and scratch": buildImage(t, "", testLayer{files: nil}, testLayer{files: []tf{file("hello", elf(10), 0o755)}}),
	}
	rnd, err := random.Image(3000, 4)
	if err != nil {
		t.Fatal(err)
	}
	imgs["random"] = rnd
	return imgs
}

// TestAnalyzeLayersMatchesAnalyze: the report merged from per-layer analyses, read fresh
// and then decoded from the cache, is exactly the whole-image report.
func TestAnalyzeLayersMatchesAnalyze(t *testing.T) {
	ctx := context.Background()
	for name, img := range equivalenceImages(t) {
		for _, top := range []int{0, 2, -1} {
			opts := Options{Name: "img", Top: top}
			want, err := AnalyzeContext(ctx, img, opts)
			if err != nil {
				t.Fatalf("%s: AnalyzeContext: %v", name, err)
			}
			cache := memCache{}
			opts.Cache = cache
			o := opens{}
			fresh, err := AnalyzeLayers(ctx, img, sources(t, img, o), opts)
			if err != nil {
				t.Fatalf("%s: AnalyzeLayers: %v", name, err)
			}
			if d := cmp.Diff(want, fresh); d != "" {
				t.Errorf("%s, top %d: read fresh (-whole image +merged):\n%s", name, top, d)
			}
			cached, err := AnalyzeLayers(ctx, img, sources(t, img, o), opts)
			if err != nil {
				t.Fatalf("%s: AnalyzeLayers from the cache: %v", name, err)
			}
			if d := cmp.Diff(want, cached); d != "" {
				t.Errorf("%s, top %d: from the cache (-whole image +merged):\n%s", name, top, d)
			}
			for id, n := range o {
				if n != 1 {
					t.Errorf("%s: layer %s opened %d times over two analyses, want once", name, id, n)
				}
			}
		}
	}
}

// TestSummaryReadsOnlyNewLayers: after a build whose final image gained one layer, the
// summary opens that layer only; a layer shared by a discarded stage and the final image
// is read once; and the summary is the one whole-image analyses give.
func TestSummaryReadsOnlyNewLayers(t *testing.T) {
	ctx := context.Background()
	base := buildImage(t, "", plantedLayers()...)
	builder, err := mutate.AppendLayers(base, layerOf(t, []tf{file("usr/bin/make", elf(100), 0o755), file("src/main.o", elf(90), 0o644)}))
	if err != nil {
		t.Fatal(err)
	}
	final, err := mutate.AppendLayers(base, layerOf(t, []tf{file("app/main", elf(80), 0o755)}))
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := mutate.AppendLayers(final, layerOf(t, []tf{file("app/config.json", "{}", 0o644)}))
	if err != nil {
		t.Fatal(err)
	}
	cache := memCache{}
	o := opens{}
	summarize := func(img v1.Image) Summary {
		t.Helper()
		_, s, err := SummarizeBuild(ctx, Build{Image: img, Layers: sources(t, img, o),
			Discarded: [][]LayerSource{sources(t, builder, o)}}, Options{Name: "test", Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	summarize(final)
	for id, n := range o {
		if n != 1 {
			t.Errorf("first build: layer %s opened %d times, want once", id, n)
		}
	}
	clear(o)
	got := summarize(rebuilt)
	top, err := rebuilt.Layers()
	if err != nil {
		t.Fatal(err)
	}
	newID, err := top[len(top)-1].DiffID()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(opens{newID.String(): 1}, o); d != "" {
		t.Errorf("rebuild opened (-want +got):\n%s", d)
	}
	wantFinal, wantBuilder := analyze(t, rebuilt), analyze(t, builder)
	if d := cmp.Diff(Summarize(wantFinal, []*Report{wantBuilder}), got); d != "" {
		t.Errorf("summary (-whole images +merged):\n%s", d)
	}
	if len(got.LeftBehind) == 0 || got.LeftBehind[0] != "make" {
		t.Errorf("left behind = %v, want make first", got.LeftBehind)
	}
}

// TestCorruptCacheEntry: an entry that is not what the report wrote is ignored, the layer
// is read again, and the entry is written anew.
func TestCorruptCacheEntry(t *testing.T) {
	ctx := context.Background()
	img := buildImage(t, "", plantedLayers()...)
	want := analyze(t, img)
	good := memCache{}
	if _, err := AnalyzeLayers(ctx, img, sources(t, img, opens{}), Options{Name: "test", Cache: good}); err != nil {
		t.Fatal(err)
	}
	ls, err := ImageLayers(img)
	if err != nil {
		t.Fatal(err)
	}
	key := LayerKey(ls[0].ID)
	entry := good[key]
	// withSum seals body with a valid checksum, so that only the decoder's checks stand in the way.
	withSum := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli()))
	}
	flip := append([]byte(nil), entry...)
	flip[len(scanMagic)+len(flip[len(scanMagic):])/2] ^= 0x10
	for name, bad := range map[string][]byte{
		"empty":           {},
		"truncated":       entry[:len(entry)/2],
		"one bit off":     flip,
		"other version":   append([]byte(strings.Replace(string(entry[:len(scanMagic)]), "\x01", "\x02", 1)), entry[len(scanMagic):]...),
		"json":            []byte(`{"entries":[]}`),
		"trailing bytes":  withSum(append(append([]byte(nil), entry[:len(entry)-4]...), 0)),
		"huge count":      withSum(append([]byte(scanMagic), 1, 1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07)),
		"bad kind":        withSum(append([]byte(scanMagic), 0, 0, 0, 0, 0, 0, 1, 0, 1, 'a', 9, 0, 0, 0, 0)),
		"shared too long": withSum(append([]byte(scanMagic), 0, 0, 0, 0, 0, 0, 1, 5, 1, 'a', 1, 0, 0, 0, 0)),
	} {
		cache := memCache{}
		for k, v := range good {
			cache[k] = v
		}
		cache[key] = bad
		o := opens{}
		got, err := AnalyzeLayers(ctx, img, sources(t, img, o), Options{Name: "test", Cache: cache})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: report (-want +got):\n%s", name, d)
		}
		if d := cmp.Diff(opens{ls[0].ID: 1}, o); d != "" {
			t.Errorf("%s: opened (-want +got):\n%s", name, d)
		}
		if !bytes.Equal(cache[key], entry) {
			t.Errorf("%s: the entry was not written anew", name)
		}
	}
}

// TestAnalyzeLayersErrors: a mismatch between the image and the sources given, and a
// layer that cannot be read, are errors that name the layer.
func TestAnalyzeLayersErrors(t *testing.T) {
	ctx := context.Background()
	img := buildImage(t, "", plantedLayers()...)
	ls := sources(t, img, opens{})
	if _, err := AnalyzeLayers(ctx, img, ls[:1], Options{}); err == nil || !strings.Contains(err.Error(), "2 layers, 1 given") {
		t.Errorf("one source for two layers: err = %v", err)
	}
	broken := append([]LayerSource(nil), ls...)
	broken[1] = LayerSource{ID: "snapshot:x", Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("not a tar, not even 512 bytes")), nil
	}}
	cache := memCache{}
	if _, err := AnalyzeLayers(ctx, img, broken, Options{Cache: cache}); err == nil || !strings.Contains(err.Error(), "layer 1 (snapshot:x)") {
		t.Errorf("corrupt layer: err = %v", err)
	}
	if _, ok := cache[LayerKey("snapshot:x")]; ok {
		t.Error("a layer that could not be read was cached")
	}
}

// TestLayerKey: keys are what the store accepts, and distinct for distinct IDs.
func TestLayerKey(t *testing.T) {
	a, b := LayerKey("sha256:aa"), LayerKey("snapshot:aa")
	if a == b || len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("keys %q, %q", a, b)
	}
}

// TestUnchangedSummaryFromCache: a rebuild that changed nothing reads no layer and
// merges nothing, and gets the same report and summary; a changed discarded stage is
// not mistaken for the kept summary; no cache value names a blob (GC would keep it).
func TestUnchangedSummaryFromCache(t *testing.T) {
	ctx := context.Background()
	base := buildImage(t, "", plantedLayers()...)
	builder, err := mutate.AppendLayers(base, layerOf(t, []tf{file("usr/bin/make", elf(100), 0o755)}))
	if err != nil {
		t.Fatal(err)
	}
	other, err := mutate.AppendLayers(base, layerOf(t, []tf{file("usr/bin/rustc", elf(100), 0o755)}))
	if err != nil {
		t.Fatal(err)
	}
	final, err := mutate.AppendLayers(base, layerOf(t, []tf{file("app/main", elf(80), 0o755)}))
	if err != nil {
		t.Fatal(err)
	}
	cache := memCache{}
	gets := &countingCache{Cache: cache}
	o := opens{}
	summarize := func(b v1.Image) (*Report, Summary) {
		t.Helper()
		r, s, err := SummarizeBuild(ctx, Build{Image: final, Layers: sources(t, final, o),
			Discarded: [][]LayerSource{sources(t, b, o)}}, Options{Name: "test", Cache: gets})
		if err != nil {
			t.Fatal(err)
		}
		return r, s
	}
	r1, s1 := summarize(builder)
	clear(o)
	gets.n = 0
	r2, s2 := summarize(builder)
	if len(o) != 0 || gets.n != 1 {
		t.Errorf("unchanged rebuild opened %v and read %d cache values, want none and 1", o, gets.n)
	}
	if d := cmp.Diff(r1, r2); d != "" {
		t.Errorf("report from the cache (-computed +cached):\n%s", d)
	}
	if d := cmp.Diff(s1, s2); d != "" {
		t.Errorf("summary from the cache (-computed +cached):\n%s", d)
	}
	_, s3 := summarize(other)
	if len(s3.LeftBehind) == 0 || s3.LeftBehind[0] != "rustc" {
		t.Errorf("another builder stage: left behind = %v, want rustc (first: %v)", s3.LeftBehind, s1.LeftBehind)
	}
	for k, v := range cache {
		if bytes.Contains(v, []byte("sha256:")) {
			t.Errorf("cache value %s names a digest", k)
		}
	}
}

// countingCache counts reads.
type countingCache struct {
	Cache
	n int
}

func (c *countingCache) GetCache(key string) ([]byte, error) {
	c.n++
	return c.Cache.GetCache(key)
}

// TestKeptAnalysisSparesTheRead: an analysis made by ScanLayer from a layer's tar and
// kept under the layer's ID (what an import does while it unpacks) gives the report that
// reading the layer gives, and the layer is then never opened.
func TestKeptAnalysisSparesTheRead(t *testing.T) {
	ctx := context.Background()
	for name, img := range equivalenceImages(t) {
		want, err := AnalyzeContext(ctx, img, Options{Name: "img"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cache := memCache{}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			a, err := ScanLayer(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: ScanLayer: %v", name, err)
			}
			id, err := l.DiffID()
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Keep(cache, id.String()); err != nil {
				t.Fatal(err)
			}
		}
		o := opens{}
		got, err := AnalyzeLayers(ctx, img, sources(t, img, o), Options{Name: "img", Cache: cache})
		if err != nil {
			t.Fatalf("%s: AnalyzeLayers: %v", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-read +kept):\n%s", name, d)
		}
		if len(o) != 0 {
			t.Errorf("%s: layers opened %v, want none", name, o)
		}
	}
	if err := (&LayerAnalysis{scan: &layerScan{}}).Keep(memCache{}, ""); err == nil {
		t.Error("Keep with no ID: no error")
	}
}
