package regcache_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regcache"
	"github.com/slimbuild/slimbuild/internal/regtest"
)

// TestFlakyRegistry: behind a proxy that answers every third request with 503 and
// holds one request past the client's timeout, an image push and a cache export
// still get through, and what arrives is whole.
func TestFlakyRegistry(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	proxy := regtest.NewProxy(t, reg, regtest.Flaky{FailEvery: 3, StallRequest: 4, StallFor: 20 * time.Second})
	flaky := &image.Registry{Timeout: time.Second}
	ctx := context.Background()

	img, err := random.Image(300_000, 3)
	if err != nil {
		t.Fatal(err)
	}
	d, err := flaky.PushImage(ctx, img, proxy.Host+"/flaky/img:1")
	if err != nil {
		t.Fatalf("push through the flaky proxy: %v", err)
	}
	steps := []regcache.Step{randomStep(t, "one", 200_000), randomStep(t, "two", 100_000)}
	if _, err := regcache.Export(ctx, flaky, proxy.Host+"/flaky/cache:1", steps); err != nil {
		t.Fatalf("cache export through the flaky proxy: %v", err)
	}
	if proxy.Failed() == 0 || proxy.Stalled() != 1 {
		t.Fatalf("the proxy failed %d and stalled %d requests: the test did not test", proxy.Failed(), proxy.Stalled())
	}
	t.Logf("%d requests, %d answered 503, %d stalled", proxy.Requests(), proxy.Failed(), proxy.Stalled())

	// Read back directly: whole and valid.
	direct := &image.Registry{}
	r, _ := direct.Ref(reg + "/flaky/img:1")
	got, err := remote.Image(r, direct.Options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != d {
		t.Errorf("the registry holds %s, the push said %s", gd, d)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	c, found, err := regcache.Open(ctx, direct, reg+"/flaky/cache:1")
	if err != nil || !found || c.Len() != 2 {
		t.Fatalf("Open: found %v, %v", found, err)
	}
	for _, s := range steps {
		info, _, ok := c.Lookup(s.Key)
		if !ok {
			t.Fatalf("step %s missing", s.Key)
		}
		l, _ := c.Blob(*info)
		if !bytes.Equal(readAll(t, l), readAll(t, s.Blob)) {
			t.Errorf("blob of step %s differs", s.Key)
		}
	}
}

// TestCrossRepoMount: on the real registry, which keeps blobs per repository,
// exporting a cache whose layers came from another repository's cache mounts them
// rather than sending them through this machine.
func TestCrossRepoMount(t *testing.T) {
	reg := regtest.Start(t, regtest.Options{})
	ctx := context.Background()
	a := randomStep(t, "a", 500_000)
	if _, err := regcache.Export(ctx, &image.Registry{}, reg+"/team/one:cache", []regcache.Step{a}); err != nil {
		t.Fatal(err)
	}
	c, _, err := regcache.Open(ctx, &image.Registry{}, reg+"/team/one:cache")
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := c.Blob(*a.Layer)
	rec := &recorder{inner: http.DefaultTransport}
	step := regcache.Step{Key: a.Key, Layer: a.Layer, Created: a.Created, Blob: blob}
	if _, err := regcache.Export(ctx, &image.Registry{Transport: rec}, reg+"/team/two:cache", []regcache.Step{step}); err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, r := range rec.requests() {
		if strings.HasPrefix(r, "POST ") && strings.Contains(r, "mount=") && strings.Contains(r, "from=team%2Fone") {
			mounted = true
		}
		if strings.HasPrefix(r, "PUT ") && strings.Contains(r, url.QueryEscape(a.Layer.Digest.String())) {
			t.Errorf("the layer was uploaded: %s", r)
		}
	}
	if !mounted {
		t.Errorf("no cross-repository mount: %v", rec.requests())
	}
	if n := rec.bytes.Load(); n > 50_000 {
		t.Errorf("the export read %d bytes from the registry; the 500 kB layer should not come through here", n)
	}
	c2, _, err := regcache.Open(ctx, &image.Registry{}, reg+"/team/two:cache")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := c2.Blob(*a.Layer)
	if !bytes.Equal(readAll(t, l), readAll(t, a.Blob)) {
		t.Errorf("the mounted blob differs")
	}
}
