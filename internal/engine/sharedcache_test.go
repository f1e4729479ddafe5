package engine_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regcache"
	"github.com/slimbuild/slimbuild/internal/store"
)

// countingTransport counts the bytes of every response body it hands out.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// sharedCacheFiles: a builder stage makes 3 MB of noise and a small file; the
// final stage copies only the small file.
var sharedCacheFiles = map[string]string{
	"Dockerfile": `FROM busybox:latest AS big
RUN head -c 3000000 /dev/urandom > /noise && echo made-in-big > /small
RUN cp /small /small2
FROM busybox:latest
COPY --from=big /small2 /small
RUN cat /small /small > /twice
`,
}

// layerInfo is s's layer blob (made now if the step left a snapshot).
func layerInfo(t *testing.T, s engine.CacheStep) *store.LayerInfo {
	t.Helper()
	info, err := s.LayerInfo()
	if err != nil {
		t.Fatalf("step %s: %v", s.Key, err)
	}
	return info
}

func exportSteps(t *testing.T, res *engine.Result, mode string) []regcache.Step {
	t.Helper()
	var steps []regcache.Step
	for _, s := range res.CacheSteps {
		if mode == "min" && !s.Final {
			continue
		}
		steps = append(steps, regcache.Step{Key: s.Key, Layer: layerInfo(t, s), Created: s.Created, Blob: s.Blob})
	}
	return steps
}

// TestSharedCacheLazy: runner A builds and exports its cache; runner B, with a
// fresh store, builds the same with A's cache: every step is served from the cache,
// the result is the same image, and B downloads the final image's own layer but
// never the builder stage's 3 MB. When B's last step changes, it runs, and
// downloads only its parents.
func TestSharedCacheLazy(t *testing.T) {
	requireEngine(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref := u.Host + "/fleet/app:cache"
	ctx := context.Background()

	stA := newStore(t)
	resA := mustBuild(t, stA, sharedCacheFiles, engine.Options{Network: "none"})
	if _, err := regcache.Export(ctx, &image.Registry{}, ref, exportSteps(t, resA, "max")); err != nil {
		t.Fatalf("export: %v", err)
	}

	runnerB := func(t *testing.T, files map[string]string) (*engine.Result, *store.Store, map[string]string, int64) {
		t.Helper()
		ct := &countingTransport{}
		reg := &image.Registry{Transport: ct}
		c, found, err := regcache.Open(ctx, reg, ref)
		if err != nil || !found {
			t.Fatalf("opening the cache: found %v, %v", found, err)
		}
		st := newStore(t)
		rec := &recorder{}
		bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		res, err := engine.Build(bctx, st, engine.Options{ContextDir: writeContext(t, files), Network: "none", CacheFrom: []engine.CacheSource{c}, Progress: rec.progress})
		if err != nil {
			t.Fatalf("runner B: %v", err)
		}
		if err := validateImage(res.Image); err != nil {
			t.Errorf("validate.Image: %v", err)
		}
		return res, st, rec.fsSteps(), ct.n.Load()
	}

	t.Run("everything cached", func(t *testing.T) {
		res, st, steps, fetched := runnerB(t, sharedCacheFiles)
		t.Logf("runner B fetched %d bytes from the registry", fetched)
		for k, v := range steps {
			if v != "hit" {
				t.Errorf("step %s: %s, want a cache hit", k, v)
			}
		}
		if res.CachedSteps != res.Steps || len(steps) != 4 {
			t.Errorf("%d of %d steps cached, %d filesystem steps seen", res.CachedSteps, res.Steps, len(steps))
		}
		if res.Digest != resA.Digest {
			t.Errorf("runner B made %s, runner A %s: the same build should give the same image", res.Digest, resA.Digest)
		}
		if got := fileData(t, fsOf(t, res.Image), "twice"); got != "made-in-big\nmade-in-big\n" {
			t.Errorf("/twice = %q", got)
		}
		if fetched > 1_000_000 {
			t.Errorf("runner B fetched %d bytes; the builder stage's 3 MB layer must stay in the registry", fetched)
		}
		for _, s := range res.Stages {
			if !s.Target && !s.Remote {
				t.Errorf("stage %s is not marked Remote, though its layers were not fetched", s.Name)
			}
		}
		// Nothing of the builder stage is in B's store.
		for _, s := range resA.CacheSteps {
			if !s.Final && layerInfo(t, s) != nil && st.HasBlob(layerInfo(t, s).Digest) {
				t.Errorf("builder layer %s was downloaded", layerInfo(t, s).Digest)
			}
		}
		// What came over is in B's own cache now: without the shared cache, the builder
		// stage runs again (its layers never came), and the final stage hits.
		rec := &recorder{}
		again := mustBuild(t, st, sharedCacheFiles, engine.Options{Network: "none", Progress: rec.progress})
		want := map[string]string{"big#1": "miss", "big#2": "miss", "stage-1#1": "hit", "stage-1#2": "hit"}
		if diff := cmp.Diff(want, rec.fsSteps()); diff != "" {
			t.Errorf("rebuild without the shared cache (-want +got):\n%s", diff)
		}
		if again.Digest != resA.Digest {
			t.Errorf("rebuild made %s, want %s", again.Digest, resA.Digest)
		}
	})

	t.Run("the last step changed", func(t *testing.T) {
		files := map[string]string{"Dockerfile": strings.Replace(sharedCacheFiles["Dockerfile"], "> /twice", "> /twice2", 1)}
		res, st, steps, fetched := runnerB(t, files)
		t.Logf("runner B fetched %d bytes from the registry", fetched)
		if got := steps["stage-1#2"]; got != "miss" {
			t.Errorf("the changed RUN: %s, want it to run", got)
		}
		if got := steps["stage-1#1"]; got != "hit" {
			t.Errorf("COPY --from: %s, want a hit", got)
		}
		if got := fileData(t, fsOf(t, res.Image), "twice2"); got != "made-in-big\nmade-in-big\n" {
			t.Errorf("/twice2 = %q", got)
		}
		if fetched > 1_000_000 {
			t.Errorf("runner B fetched %d bytes; only the changed step's parents were needed", fetched)
		}
		for _, s := range resA.CacheSteps {
			if !s.Final && layerInfo(t, s) != nil && st.HasBlob(layerInfo(t, s).Digest) {
				t.Errorf("builder layer %s was downloaded", layerInfo(t, s).Digest)
			}
		}
	})

	t.Run("mode=min keeps the final stages only", func(t *testing.T) {
		steps := exportSteps(t, resA, "min")
		minRef := u.Host + "/fleet/app:min"
		if _, err := regcache.Export(ctx, &image.Registry{}, minRef, steps); err != nil {
			t.Fatal(err)
		}
		c, _, err := regcache.Open(ctx, &image.Registry{}, minRef)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 2 {
			t.Errorf("mode=min cache has %d steps, want the final stage's 2", c.Len())
		}
		for _, s := range resA.CacheSteps {
			_, _, ok := c.Lookup(s.Key)
			if ok != s.Final {
				t.Errorf("step %s of stage %d: in the min cache %v, final %v", s.Key, s.Stage, ok, s.Final)
			}
		}
	})
}

// TestSharedCacheOversizedBlob: a registry that answers a cached layer with an
// endless stream (no Content-Length) makes the build fail on the layer's digest
// after reading one byte more than the cache recorded, not after filling the disk.
func TestSharedCacheOversizedBlob(t *testing.T) {
	requireEngine(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var poisoned atomic.Value // the blob path to answer with zeros
	poisoned.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := poisoned.Load().(string); p != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, p) {
			zeros := make([]byte, 64<<10)
			for i := 0; i < 1024; i++ { // 64 MiB, chunked
				if _, err := w.Write(zeros); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref := u.Host + "/fleet/app:cache"
	ctx := context.Background()

	resA := mustBuild(t, newStore(t), sharedCacheFiles, engine.Options{Network: "none"})
	if _, err := regcache.Export(ctx, &image.Registry{}, ref, exportSteps(t, resA, "max")); err != nil {
		t.Fatal(err)
	}
	var target string
	for _, s := range resA.CacheSteps {
		if info := layerInfo(t, s); s.Final && info != nil {
			target = "/blobs/" + info.Digest.String()
			break
		}
	}
	poisoned.Store(target)

	ct := &countingTransport{}
	c, _, err := regcache.Open(ctx, &image.Registry{Transport: ct}, ref)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	_, err = engine.Build(ctx, st, engine.Options{ContextDir: writeContext(t, sharedCacheFiles), Network: "none", CacheFrom: []engine.CacheSource{c}})
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("build with a poisoned cache layer: %v, want a digest error", err)
	}
	if n := ct.n.Load(); n > 8<<20 {
		t.Errorf("the build read %d bytes of a blob the cache says is small", n)
	}
	assertClean(t, st)
}
