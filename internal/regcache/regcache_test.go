package regcache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regcache"
	"github.com/slimbuild/slimbuild/internal/store"
)

var _ engine.CacheSource = (*regcache.Cache)(nil)

// recorder is an http.RoundTripper that logs every request and counts response bytes.
type recorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	reqs  []string // "METHOD PATH?QUERY"
	bytes atomic.Int64
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
	r.mu.Unlock()
	resp, err := r.inner.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &r.bytes}
	}
	return resp, err
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
	r.bytes.Store(0)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// newRegistry starts an in-process registry; host is its "127.0.0.1:PORT".
func newRegistry(t *testing.T) (host string, rec *recorder, reg *image.Registry) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	rec = &recorder{inner: http.DefaultTransport}
	return u.Host, rec, &image.Registry{Transport: rec}
}

// key makes a valid step key from a word.
func key(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomStep makes a step with a random layer of about size bytes.
func randomStep(t *testing.T, name string, size int64) regcache.Step {
	t.Helper()
	l, err := random.Layer(size, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	info := layerInfo(t, l)
	return regcache.Step{Key: key(name), Layer: &info, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Blob: l}
}

func layerInfo(t *testing.T, l v1.Layer) store.LayerInfo {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return store.LayerInfo{Digest: d, DiffID: diffID, Size: size, MediaType: mt}
}

func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportOpenRoundTrip(t *testing.T) {
	host, rec, reg := newRegistry(t)
	ctx := context.Background()
	a, b := randomStep(t, "a", 3000), randomStep(t, "b", 5000)
	empty := regcache.Step{Key: key("empty"), Created: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
	dup := b
	dup.Key = key("same layer, other step")
	ref := host + "/team/app:buildcache"
	if _, err := regcache.Export(ctx, reg, ref, []regcache.Step{a, b, empty, dup}); err != nil {
		t.Fatalf("Export: %v", err)
	}

	// The manifest is the documented artifact, and a valid image to the registry's tools.
	r, _ := reg.Ref(ref)
	desc, err := remote.Get(r, reg.Options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != regcache.ArtifactType || m.Config.MediaType != regcache.ConfigMediaType || len(m.Layers) != 2 {
		t.Errorf("manifest: artifactType %q, config %q, %d layers (want 2: the shared layer once)", m.ArtifactType, m.Config.MediaType, len(m.Layers))
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Errorf("validate: %v", err)
	}

	rec.reset()
	c, found, err := regcache.Open(ctx, reg, ref)
	if err != nil || !found {
		t.Fatalf("Open: found %v, %v", found, err)
	}
	if c.Len() != 4 {
		t.Errorf("Len = %d, want 4", c.Len())
	}
	for _, want := range []regcache.Step{a, b, empty, dup} {
		got, created, ok := c.Lookup(want.Key)
		if !ok {
			t.Fatalf("Lookup(%s): miss", want.Key)
		}
		if diff := cmp.Diff(want.Layer, got); diff != "" || !created.Equal(want.Created) {
			t.Errorf("Lookup(%s): created %v, layer (-want +got):\n%s", want.Key, created, diff)
		}
	}
	if _, _, ok := c.Lookup(key("never built")); ok {
		t.Errorf("Lookup of an unknown key hit")
	}
	// Reading the cache fetched no layer.
	for _, req := range rec.requests() {
		for _, s := range []regcache.Step{a, b} {
			if strings.Contains(req, s.Layer.Digest.String()) {
				t.Errorf("Open or Lookup fetched a layer: %s", req)
			}
		}
	}
	// Blob is lazy: no request until the content is read, then the right bytes.
	rec.reset()
	l, err := c.Blob(*a.Layer)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := l.DiffID(); d != a.Layer.DiffID {
		t.Errorf("Blob DiffID = %s, want %s", d, a.Layer.DiffID)
	}
	if reqs := rec.requests(); len(reqs) != 0 {
		t.Errorf("Blob and its metadata made requests: %v", reqs)
	}
	if got, want := readAll(t, l), readAll(t, a.Blob); !bytes.Equal(got, want) {
		t.Errorf("the cached blob's bytes differ from the exported layer's")
	}
}

func TestOpenMissingIsEmpty(t *testing.T) {
	host, _, reg := newRegistry(t)
	c, found, err := regcache.Open(context.Background(), reg, host+"/nobody/here:cache")
	if err != nil || found {
		t.Fatalf("Open of a missing ref: found %v, err %v; want an empty cache", found, err)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d", c.Len())
	}
}

// TestExportSkipsPresentBlobs: a second export uploads no layer again, and a layer
// from another repository's cache is not downloaded to be exported.
func TestExportSkipsPresentBlobs(t *testing.T) {
	host, rec, reg := newRegistry(t)
	ctx := context.Background()
	a := randomStep(t, "a", 200_000)
	if _, err := regcache.Export(ctx, reg, host+"/team/app:cache", []regcache.Step{a}); err != nil {
		t.Fatal(err)
	}
	uploads := func() (n int, sentA bool) {
		for _, r := range rec.requests() {
			if strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/blobs/uploads/") {
				n++
				sentA = sentA || strings.Contains(r, url.QueryEscape(a.Layer.Digest.String()))
			}
		}
		return n, sentA
	}
	rec.reset()
	b := randomStep(t, "b", 1000)
	if _, err := regcache.Export(ctx, reg, host+"/team/app:cache", []regcache.Step{a, b}); err != nil {
		t.Fatal(err)
	}
	// b and the config are new: 2 uploads; a is not uploaded again.
	if n, sentA := uploads(); n != 2 || sentA {
		t.Errorf("second export made %d blob uploads, want 2 (b and the config): %v", n, rec.requests())
	}

	c, _, err := regcache.Open(ctx, reg, host+"/team/app:cache")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := c.Blob(*a.Layer)
	if err != nil {
		t.Fatal(err)
	}
	rec.reset()
	fromCache := regcache.Step{Key: a.Key, Layer: a.Layer, Created: a.Created, Blob: blob}
	if _, err := regcache.Export(ctx, reg, host+"/other/repo:cache", []regcache.Step{fromCache}); err != nil {
		t.Fatal(err)
	}
	// (This registry keeps blobs across repositories, so it has a already; the
	// real registry's test checks the cross-repository mount.)
	if _, sentA := uploads(); sentA {
		t.Errorf("export to another repository uploaded a again: %v", rec.requests())
	}
	if got := rec.bytes.Load(); got > 50_000 {
		t.Errorf("export of a mountable layer read %d bytes from the registry, want none of its 200 kB", got)
	}
	c2, _, err := regcache.Open(ctx, reg, host+"/other/repo:cache")
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := c2.Blob(*a.Layer)
	if !bytes.Equal(readAll(t, l2), readAll(t, a.Blob)) {
		t.Errorf("the mounted blob's bytes differ")
	}
}

// TestConcurrentExports: runners exporting to the same ref at once leave a cache
// that opens and is exactly one of theirs.
func TestConcurrentExports(t *testing.T) {
	host, _, reg := newRegistry(t)
	ctx := context.Background()
	ref := host + "/team/app:cache"
	sets := make([][]regcache.Step, 4)
	for i := range sets {
		for j := 0; j < 3; j++ {
			sets[i] = append(sets[i], randomStep(t, fmt.Sprintf("runner %d step %d", i, j), 20_000))
		}
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(sets))
		for i := range sets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = regcache.Export(ctx, reg, ref, sets[i])
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		c, found, err := regcache.Open(ctx, reg, ref)
		if err != nil || !found {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		winner := -1
		for i, set := range sets {
			if _, _, ok := c.Lookup(set[0].Key); ok {
				winner = i
			}
		}
		if winner < 0 || c.Len() != 3 {
			t.Fatalf("round %d: the cache is no runner's export (%d steps)", round, c.Len())
		}
		for _, s := range sets[winner] {
			info, _, ok := c.Lookup(s.Key)
			if !ok {
				t.Fatalf("round %d: step %s of the winner is missing", round, s.Key)
			}
			l, _ := c.Blob(*info)
			if !bytes.Equal(readAll(t, l), readAll(t, s.Blob)) {
				t.Errorf("round %d: a blob of the winner differs", round)
			}
		}
	}
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }
