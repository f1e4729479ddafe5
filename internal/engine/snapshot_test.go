package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/store"
)

// count is the number of entries in dir under the store root.
func count(t *testing.T, st *store.Store, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(st.Root(), dir))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// rawBuild builds without touching the stage images (buildIn validates each one,
// which would make their blobs).
func rawBuild(t *testing.T, st *store.Store, dir string, opts engine.Options) *engine.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts.ContextDir = dir
	res, err := engine.Build(ctx, st, opts)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return res
}

const builderHeavy = `FROM busybox AS builder
COPY src /src
COPY --link src /linked
RUN mkdir /out && for i in 1 2 3; do head -c 100000 /dev/urandom > /out/f$i; done && cp /src/app /out/app
FROM busybox
COPY --from=builder /out/app /app
`

// A stage that does not ship costs its steps and nothing else: no layer blob.
func TestDiscardedStageWritesNoBlob(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": builderHeavy, "src/app": "the artifact\n"})
	blobs, snaps := count(t, st, "blobs/sha256"), count(t, st, "snapshots")

	res := rawBuild(t, st, dir, engine.Options{})
	// The final stage's one COPY layer, its config and its manifest.
	if got := count(t, st, "blobs/sha256") - blobs; got != 3 {
		t.Errorf("the build wrote %d blobs, want 3 (the final COPY layer, config, manifest)", got)
	}
	if got := count(t, st, "snapshots") - snaps; got != 3 {
		t.Errorf("the build left %d snapshots, want 3 (the builder's steps)", got)
	}
	if got := fileData(t, fsOf(t, res.Image), "app"); got != "the artifact\n" {
		t.Errorf("/app = %q", got)
	}

	// A rebuild is served from the snapshots, still without a blob.
	again := rawBuild(t, st, dir, engine.Options{})
	if again.CachedSteps != again.Steps || again.Digest != res.Digest {
		t.Errorf("rebuild: %d of %d steps cached, digest %s (first %s)", again.CachedSteps, again.Steps, again.Digest, res.Digest)
	}
	if got := count(t, st, "blobs/sha256") - blobs; got != 3 {
		t.Errorf("after the rebuild the store holds %d new blobs, want 3", got)
	}

	// Asking for the builder stage's image makes its blobs, once, and moves each
	// snapshot to the layer directory of its diffID.
	builder := again.Stages[0]
	if builder.Target || builder.Name != "builder" {
		t.Fatalf("stage 0 = %+v", builder)
	}
	if _, err := builder.Image.Digest(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, st, "blobs/sha256") - blobs; got != 3+3 {
		t.Errorf("after making the builder's image: %d new blobs, want 6 (+ its 3 layers)", got)
	}
	if got := count(t, st, "snapshots") - snaps; got != 0 {
		t.Errorf("%d snapshots left after their blobs were made, want 0 (promoted to layers/)", got)
	}
	ls, err := builder.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.DiffID()
		if _, ok := st.LayerDirPath(d); !ok {
			t.Errorf("layer %s has no unpacked directory", d)
		}
	}
	checkResult(t, again)
}

// An image is the same bytes whichever way its layers were first stored: as
// snapshots of a stage that did not ship, or as blobs in another compression.
func TestImageSameWhicheverWayStored(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": builderHeavy, "src/app": "the artifact\n"})
	rawBuild(t, st, dir, engine.Options{}) // the builder's steps are snapshots now
	st.Close()

	// A second store that is the same until now.
	root2 := t.TempDir()
	if out, err := exec.Command("cp", "-a", st.Root()+"/.", root2).CombinedOutput(); err != nil {
		t.Fatalf("copying store: %v\n%s", err, out)
	}
	registerRoot(root2)
	st1, err := store.Open(st.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer st1.Close()
	st2, err := store.Open(root2)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()

	// Store 1 ships the builder stage straight away; store 2 first as zstd.
	one := rawBuild(t, st1, dir, engine.Options{Target: "builder"})
	zst := rawBuild(t, st2, dir, engine.Options{Target: "builder", Compression: store.Zstd})
	two := rawBuild(t, st2, dir, engine.Options{Target: "builder"})
	if one.CachedSteps != one.Steps || two.CachedSteps != two.Steps || zst.CachedSteps != zst.Steps {
		t.Errorf("steps cached: %d/%d, %d/%d, %d/%d; want all", one.CachedSteps, one.Steps, zst.CachedSteps, zst.Steps, two.CachedSteps, two.Steps)
	}
	if zst.Digest == one.Digest {
		t.Errorf("the zstd image has the gzip image's digest %s", one.Digest)
	}
	if one.Digest != two.Digest {
		t.Errorf("the same image made two ways: %s and %s", one.Digest, two.Digest)
	}
	m1, _ := one.Image.RawManifest()
	m2, _ := two.Image.RawManifest()
	if string(m1) != string(m2) {
		t.Errorf("manifests differ:\n%s\n%s", m1, m2)
	}
	checkResult(t, one)
	checkResult(t, two)
}
