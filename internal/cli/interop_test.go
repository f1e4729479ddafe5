package cli

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slimbuild/slimbuild/internal/regtest"
	"github.com/slimbuild/slimbuild/internal/store"
)

// buildkitFixture is an image that BuildKit's buildctl built and exported as an
// OCI archive (testdata/buildkit-image/regen.sh re-records it): FROM scratch, a
// COPY of greeting.txt, ENV, WORKDIR /srv and CMD.
var buildkitFixture = filepath.Join("testdata", "buildkit-image", "image.tar")

// TestBuildOnBuildKitImage: an image built by BuildKit and pushed to the real CNCF
// registry unchanged (same manifest digest) is pulled by slimbuild as a base and
// built on. The base's layers stay bit-for-bit (same diffIDs, same compressed
// digests), its config is inherited (Env, WorkingDir, Cmd), and a RUN step sees
// the base's files and environment.
func TestBuildOnBuildKitImage(t *testing.T) {
	root := bases(t)
	reg := regtest.Start(t, regtest.Options{})

	bk := fixtureImage(t)
	bkDigest, err := bk.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg+"/bk/fixture:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, bk); err != nil {
		t.Fatalf("pushing the BuildKit fixture: %v", err)
	}
	pushed, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != bkDigest {
		t.Fatalf("the registry holds %s, the fixture's manifest is %s: the push changed the image", pushed.Digest, bkDigest)
	}

	dir := t.TempDir()
	dockerfile := `FROM busybox:latest AS tools

FROM ` + reg + `/bk/fixture:latest
COPY --from=tools /bin/busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "busybox cat \"$GREETING_FILE\" >seen && busybox pwd >>seen"]
COPY note.txt note.txt
`
	for file, content := range map[string]string{"Dockerfile": dockerfile, "note.txt": "built by slimbuild\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := slimbuild(t, root, "build", "--progress", "plain", "--network", "none", "-t", "onbk:1", dir)
	if err != nil {
		t.Fatalf("build on the BuildKit image: %v\n%s", err, stderr)
	}

	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	img, err := st.Image(last(out))
	if err != nil {
		t.Fatal(err)
	}

	// The base's layers, bit-for-bit, then three of slimbuild's own.
	baseLayers, err := bk.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(baseLayers)+3 {
		t.Fatalf("built image has %d layers, want the base's %d + 3", len(layers), len(baseLayers))
	}
	for i, bl := range baseLayers {
		for _, f := range []func(v1.Layer) (v1.Hash, error){v1.Layer.DiffID, v1.Layer.Digest} {
			want, err := f(bl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f(layers[i])
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("layer %d is %s, BuildKit's is %s", i, got, want)
			}
		}
	}
	bkCfg, err := bk.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range bkCfg.RootFS.DiffIDs {
		if i >= len(cfg.RootFS.DiffIDs) || cfg.RootFS.DiffIDs[i] != d {
			t.Errorf("config diffIDs %v do not start with BuildKit's %v", cfg.RootFS.DiffIDs, bkCfg.RootFS.DiffIDs)
			break
		}
	}

	// The config is inherited.
	if !slices.Contains(cfg.Config.Env, "GREETING_FILE=/etc/greeting.txt") || !slices.Contains(cfg.Config.Env, "PATH=/bin") {
		t.Errorf("Env %q does not carry the base's GREETING_FILE and PATH", cfg.Config.Env)
	}
	if cfg.Config.WorkingDir != "/srv" {
		t.Errorf("WorkingDir %q, want the base's /srv", cfg.Config.WorkingDir)
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"/bin/cat", "/etc/greeting.txt"}) {
		t.Errorf("Cmd %q, want the base's", cfg.Config.Cmd)
	}

	// RUN saw the base's file through the inherited Env and WorkingDir.
	seen := fileInLayer(t, layers[len(layers)-2], "srv/seen")
	if want := "Hello from an image that BuildKit built.\n/srv\n"; seen != want {
		t.Errorf("RUN wrote %q, want %q", seen, want)
	}
	if note := fileInLayer(t, layers[len(layers)-1], "srv/note.txt"); note != "built by slimbuild\n" {
		t.Errorf("COPY wrote %q", note)
	}
}

// fixtureImage opens the BuildKit fixture, an OCI layout in a tar, as one image.
func fixtureImage(t *testing.T) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(buildkitFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", buildkitFixture, err)
		}
		// A fixed, tiny archive of our own: names are checked anyway.
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("%s: entry %q leaves the directory", buildkitFixture, h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: unexpected entry %q (type %c)", buildkitFixture, h.Name, h.Typeflag)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("%s: %v", buildkitFixture, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%s: %d manifests in index.json, want 1", buildkitFixture, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fileInLayer returns the content of path in a layer's tar.
func fileInLayer(t *testing.T, l v1.Layer, path string) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "./") == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}
