package engine_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

// reproEpoch is well before any file the tests make, so every time they write is clamped.
var reproEpoch = time.Unix(1_700_000_000, 0).UTC()

// reproFiles is a context whose build has a WORKDIR, a COPY of the context, a
// RUN that writes files, an ARG SOURCE_DATE_EPOCH and a COPY --from a stage.
var reproFiles = map[string]string{
	"Dockerfile": `FROM busybox:latest AS side
RUN mkdir -p /opt/side && echo side > /opt/side/file

FROM busybox:latest
WORKDIR /app
COPY . /app/
RUN echo built > /app/out && mkdir /app/made && touch /app/made/empty
ARG SOURCE_DATE_EPOCH
RUN echo "epoch=$SOURCE_DATE_EPOCH" > /app/epoch
COPY --from=side /opt/side /opt/side
CMD ["cat", "/app/out"]
`,
	"src/main.txt":     "main\n",
	"src/sub/deep.txt": "deep\n",
	"top.txt":          "top\n",
}

// copyContext writes reproFiles into a new directory and sets every file and
// directory there to mtime (each copy gets its own times and path).
func copyContext(t *testing.T, mtime time.Time) string {
	t.Helper()
	dir := filepath.Join(writeContext(t, nil), "ctx-"+mtime.Format("150405.000"))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, reproFiles)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// newLayerHeaders returns the tar headers of the layers img has beyond its
// first nBase (the base image's), by layer.
func newLayerHeaders(t *testing.T, img v1.Image, nBase int) []map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]*tar.Header
	for _, l := range layers[nBase:] {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		hdrs := map[string]*tar.Header{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			hdrs[strings.TrimSuffix(h.Name, "/")] = h
		}
		rc.Close()
		out = append(out, hdrs)
	}
	return out
}

func baseImage(t *testing.T, st *store.Store) v1.Image {
	t.Helper()
	name, err := image.NormalizeName(busyboxName)
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Image(name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func baseLayerCount(t *testing.T, st *store.Store) int {
	t.Helper()
	layers, err := baseImage(t, st).Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(layers)
}

// TestReproducibleDigest builds one context from two copies (different paths,
// different mtimes) in two stores, at different times. With a source date epoch
// the image digests are equal, even when the second store's cache already holds
// the same steps built without the epoch; without it they differ.
func TestReproducibleDigest(t *testing.T) {
	requireEngine(t)
	now := time.Now()
	ctxA := copyContext(t, now.Add(-time.Hour))
	ctxB := copyContext(t, now.Add(-26*time.Hour))
	stA, stB := newStore(t), newStore(t)

	build1 := func(st *store.Store, dir string, epoch *time.Time) *engine.Result {
		t.Helper()
		res, err := buildIn(t, st, dir, engine.Options{SourceDateEpoch: epoch, Network: "none"})
		if err != nil {
			t.Fatalf("build of %s: %v", dir, err)
		}
		return res
	}

	withA := build1(stA, ctxA, &reproEpoch)
	withoutA := build1(stA, ctxA, nil)
	time.Sleep(1100 * time.Millisecond) // the second builds are at another second
	// Store B's cache gets the steps without the epoch first: they must not leak.
	withoutB := build1(stB, ctxB, nil)
	withB := build1(stB, ctxB, &reproEpoch)
	if withB.CachedSteps != 0 {
		t.Errorf("the epoch build in store B took %d steps from the cache of the build without it", withB.CachedSteps)
	}

	t.Logf("with SOURCE_DATE_EPOCH: %s and %s", withA.Digest, withB.Digest)
	t.Logf("without: %s and %s", withoutA.Digest, withoutB.Digest)
	if withA.Digest != withB.Digest {
		t.Errorf("with SOURCE_DATE_EPOCH the digests differ: %s and %s", withA.Digest, withB.Digest)
	}
	if withoutA.Digest == withoutB.Digest {
		t.Errorf("without SOURCE_DATE_EPOCH the digests are equal (%s): the test cannot tell", withoutA.Digest)
	}

	// A rebuild in store A is served from its cache and gives the same digest.
	if again := build1(stA, ctxA, &reproEpoch); again.Digest != withA.Digest || again.CachedSteps == 0 {
		t.Errorf("cached rebuild: digest %s (%d cached steps), want %s from the cache", again.Digest, again.CachedSteps, withA.Digest)
	}

	nBase := baseLayerCount(t, stB)
	for _, hdrs := range newLayerHeaders(t, withB.Image, nBase) {
		for name, h := range hdrs {
			if h.ModTime.After(reproEpoch) {
				t.Errorf("%s: mtime %v is after the epoch", name, h.ModTime.UTC())
			}
		}
	}
	var runFile *tar.Header
	for _, hdrs := range newLayerHeaders(t, withB.Image, nBase) {
		if h, ok := hdrs["app/out"]; ok {
			runFile = h
		}
	}
	if runFile == nil || !runFile.ModTime.Equal(reproEpoch) {
		t.Errorf("RUN-made /app/out: header %+v, want mtime %v", runFile, reproEpoch)
	}
	// The RUN's upper dir, kept as the layer's unpacked form, matches the blob.
	layers, err := withB.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, hdrs := range newLayerHeaders(t, withB.Image, nBase) {
		if _, ok := hdrs["app/out"]; !ok {
			continue
		}
		diffID, err := layers[nBase+i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		dir, ok := stB.LayerDirPath(diffID)
		if !ok {
			t.Fatalf("the RUN layer %s has no unpacked dir", diffID)
		}
		fi, err := os.Lstat(filepath.Join(dir, "app", "out"))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(reproEpoch) {
			t.Errorf("unpacked RUN layer: app/out has mtime %v, want the epoch as in its blob", fi.ModTime().UTC())
		}
	}
	for _, hdrs := range newLayerHeaders(t, withoutB.Image, nBase) {
		if h, ok := hdrs["app/out"]; ok && !h.ModTime.After(reproEpoch) {
			t.Errorf("without the epoch /app/out has mtime %v, not its own", h.ModTime.UTC())
		}
	}

	cfg := configOf(t, withB.Image)
	if !cfg.Created.Time.Equal(reproEpoch) {
		t.Errorf("config created %v, want the epoch", cfg.Created.Time)
	}
	// The base's history keeps its own times (as in BuildKit); every entry
	// the build added is the epoch.
	baseHistory := len(configOf(t, baseImage(t, stB)).History)
	for _, h := range cfg.History[baseHistory:] {
		if !h.Created.Time.Equal(reproEpoch) {
			t.Errorf("history %q created %v, want the epoch", h.CreatedBy, h.Created.Time)
		}
	}
	if got := fileData(t, fsOf(t, withB.Image), "app/epoch"); got != "epoch=1700000000\n" {
		t.Errorf("ARG SOURCE_DATE_EPOCH in RUN gave %q", got)
	}
}

// TestSourceDateEpochBuildArg: --build-arg SOURCE_DATE_EPOCH alone makes the
// build reproducible, as in BuildKit, and a bad value is an error.
func TestSourceDateEpochBuildArg(t *testing.T) {
	requireEngine(t)
	st := newStore(t)
	files := map[string]string{"Dockerfile": "FROM busybox:latest\nRUN touch /made\n"}
	res := mustBuild(t, st, files, engine.Options{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, Network: "none"})
	if cfg := configOf(t, res.Image); !cfg.Created.Time.Equal(reproEpoch) {
		t.Errorf("config created %v, want %v", cfg.Created.Time, reproEpoch)
	}
	hdrs := newLayerHeaders(t, res.Image, baseLayerCount(t, st))
	if h := hdrs[len(hdrs)-1]["made"]; h == nil || !h.ModTime.Equal(reproEpoch) {
		t.Errorf("RUN-made /made: header %+v, want mtime %v", h, reproEpoch)
	}
	err := buildErr(t, st, files, engine.Options{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "soon"}})
	if !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: error %v does not name it", err)
	}
}
