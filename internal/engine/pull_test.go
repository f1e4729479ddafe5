package engine_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/store"
)

// TestFromPulls: a base that is not in the store is pulled by FROM (here from an
// in-process registry on loopback), stored under its name, and built on.
func TestFromPulls(t *testing.T) {
	src := newStore(t)
	busybox, err := src.Image("docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host + "/team/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, busybox); err != nil {
		t.Fatalf("pushing the base to the test registry: %v", err)
	}

	// A store without the base: everything must come from the registry.
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	registerRoot(st.Root())
	t.Cleanup(func() { st.Close() })
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + host + "/team/busybox:1\nRUN echo pulled > /proof\n",
	})
	var mu sync.Mutex
	var infos []string
	progress := func(e engine.Event) {
		if e.Kind == engine.Info {
			mu.Lock()
			infos = append(infos, e.Text)
			mu.Unlock()
		}
	}
	res, err := buildIn(t, st, dir, engine.Options{Network: "none", Progress: progress})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	// The pull reports each layer's unpack through the build's events.
	if !slices.ContainsFunc(infos, func(s string) bool { return strings.HasPrefix(s, "unpacked layer sha256:") }) {
		t.Errorf("no unpack among the build's events: %q", infos)
	}
	if got := fileData(t, fsOf(t, res.Image), "proof"); got != "pulled\n" {
		t.Errorf("/proof = %q", got)
	}
	stored, err := st.Image(host + "/team/busybox:1")
	if err != nil {
		t.Fatalf("the pulled base is not stored under its name: %v", err)
	}
	want, _ := busybox.Digest()
	if got, _ := stored.Digest(); got != want {
		t.Errorf("stored base digest %s, pushed %s", got, want)
	}

	// NoPull refuses to go to the registry for a name the store lacks.
	dir = writeContext(t, map[string]string{"Dockerfile": "FROM " + host + "/team/other:1\n"})
	_, err = buildIn(t, st, dir, engine.Options{NoPull: true})
	if err == nil || !strings.Contains(err.Error(), "import") {
		t.Errorf("NoPull build of a missing base: %v, want an error saying how to import one", err)
	}
	assertClean(t, st)
}
