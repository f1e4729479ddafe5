package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	rt "github.com/slimbuild/slimbuild/internal/runtime"
)

// TestHelloC builds examples/hello-c three ways on the bases hack/bases.sh makes
// ($SLIMBUILD_BASES/builder.tar.gz and busybox.tar).
func TestHelloC(t *testing.T) {
	bases := os.Getenv("SLIMBUILD_BASES")
	if bases == "" {
		t.Skip("builder base not made: run make test (hack/bases.sh)")
	}
	builderTar := filepath.Join(bases, "builder.tar.gz")
	busyboxTar := filepath.Join(bases, "busybox.tar")
	for _, p := range []string{builderTar, busyboxTar} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("SLIMBUILD_BASES is set but %v: run hack/bases.sh", err)
		}
	}
	st := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for src, name := range map[string]string{builderTar: "slimbuild/builder:bookworm", busyboxTar: "busybox:latest"} {
		if _, err := image.Import(ctx, st, src, name); err != nil {
			t.Fatalf("importing %s as %s: %v", src, name, err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello-c")

	buildFile := func(t *testing.T, dockerfile string) *engine.Result {
		t.Helper()
		res, err := buildIn(t, st, example, engine.Options{Dockerfile: filepath.Join(example, dockerfile), Network: "none"})
		if err != nil {
			t.Fatalf("building %s: %v", dockerfile, err)
		}
		return res
	}
	run := func(t *testing.T, img v1.Image) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code, err := image.Run(ctx, st, img, rt.ImageRun{Stdout: &stdout, Stderr: &stderr})
		if err != nil || code != 0 {
			t.Fatalf("running the image: code %d, %v, stderr %q", code, err, stderr.String())
		}
		return stdout.String()
	}

	t.Run("naive", func(t *testing.T) {
		res := buildFile(t, "Dockerfile.naive")
		if _, ok := fsOf(t, res.Image)["usr/bin/gcc"]; !ok {
			t.Errorf("the naive image has no /usr/bin/gcc")
		}
		if out := run(t, res.Image); !strings.Contains(out, "Hello from a lean image") {
			t.Errorf("naive image printed %q", out)
		}
	})
	t.Run("multistage", func(t *testing.T) {
		// OnBase gets each stage's base image layers: the builder's and busybox's.
		var mu sync.Mutex
		var bases [][]v1.Layer
		res, err := buildIn(t, st, example, engine.Options{Dockerfile: filepath.Join(example, "Dockerfile"), Network: "none",
			OnBase: func(ls []v1.Layer) { mu.Lock(); bases = append(bases, ls); mu.Unlock() }})
		if err != nil {
			t.Fatalf("building Dockerfile: %v", err)
		}
		for _, want := range []string{"docker.io/slimbuild/builder:bookworm", "docker.io/library/busybox:latest"} {
			img, err := st.Image(want)
			if err != nil {
				t.Fatal(err)
			}
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(bases, func(got []v1.Layer) bool { return sameLayers(t, got, ls) }) {
				t.Errorf("OnBase was not given the layers of %s (got %d bases)", want, len(bases))
			}
		}
		fsys := fsOf(t, res.Image)
		if _, ok := fsys["usr/bin/gcc"]; ok {
			t.Errorf("the multistage image has /usr/bin/gcc")
		}
		if _, ok := fsys["usr/local/bin/hello"]; !ok {
			t.Errorf("the multistage image has no /usr/local/bin/hello")
		}
		if size := compressedSize(t, res.Image); size > 2_200_000 {
			t.Errorf("multistage image is %d bytes compressed, want at most 2.2 MB", size)
		} else {
			t.Logf("multistage image: %d bytes", size)
		}
		if out := run(t, res.Image); !strings.Contains(out, "Hello from a lean image") {
			t.Errorf("multistage image printed %q", out)
		}
	})
	t.Run("scratch", func(t *testing.T) {
		res := buildFile(t, "Dockerfile.scratch")
		if size := compressedSize(t, res.Image); size >= 100_000 {
			t.Errorf("scratch image is %d bytes compressed, want under 100 kB", size)
		} else {
			t.Logf("scratch image: %d bytes", size)
		}
		if out := run(t, res.Image); !strings.Contains(out, "Hello from a lean image") {
			t.Errorf("scratch image printed %q", out)
		}
	})
}

// sameLayers reports whether a and b are the same layers, by diffID.
func sameLayers(t *testing.T, a, b []v1.Layer) bool {
	t.Helper()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, err := a[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		y, err := b[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if x != y {
			return false
		}
	}
	return true
}

// compressedSize is the config plus the compressed layers, as a registry stores them.
func compressedSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}
