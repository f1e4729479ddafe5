package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/slimbuild/slimbuild/internal/store"
	"golang.org/x/sys/unix"
)

func TestParseNamedContext(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, flag string
		key        string
		want       NamedContext
		err        string
	}{
		{"dir", "src=" + dir, "docker.io/library/src:latest", NamedContext{Dir: dir}, ""},
		{"image", "alpine:latest=docker-image://busybox:1.36", "docker.io/library/alpine:latest", NamedContext{Image: "busybox:1.36"}, ""},
		{"name normalized", "docker.io/library/alpine=docker-image://busybox", "docker.io/library/alpine:latest", NamedContext{Image: "busybox"}, ""},
		{"layout default tag", "l=oci-layout://" + dir, "docker.io/library/l:latest", NamedContext{Layout: dir, LayoutTag: "latest"}, ""},
		{"layout tag", "l=oci-layout://" + dir + ":v2", "docker.io/library/l:latest", NamedContext{Layout: dir, LayoutTag: "v2"}, ""},
		{"layout digest", "l=oci-layout://" + dir + "@" + dig, "docker.io/library/l:latest", NamedContext{Layout: dir, LayoutDigest: dig}, ""},
		{"layout bad digest", "l=oci-layout://" + dir + "@sha256:zz", "", NamedContext{}, "invalid digest"},
		{"no value", "name=", "", NamedContext{}, "want NAME=VALUE"},
		{"no name", "=" + dir, "", NamedContext{}, "want NAME=VALUE"},
		{"bad name", "Not A Name=" + dir, "", NamedContext{}, "invalid context name"},
		{"reserved", "scratch=" + dir, "", NamedContext{}, "reserved"},
		{"file", "f=" + file, "", NamedContext{}, "not a directory"},
		{"missing", "m=" + filepath.Join(dir, "nope"), "", NamedContext{}, "no such file"},
		{"git", "g=https://example.com/r.git", "", NamedContext{}, "only a local directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, nc, err := ParseNamedContext(tt.flag)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--build-context") {
					t.Fatalf("error %v, want one naming --build-context and %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if key != tt.key {
				t.Errorf("name %q, want %q", key, tt.key)
			}
			if d := cmp.Diff(tt.want, nc); d != "" {
				t.Errorf("context (-want +got):\n%s", d)
			}
		})
	}
}

// TestLayoutImageBounded: an OCI layout's index.json and manifests are
// size-checked before they are read whole.
func TestLayoutImageBounded(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "index.json"), make([]byte, store.MaxManifestSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LayoutImage(st, big, "latest", "", v1.Platform{OS: "linux", Architecture: "amd64"}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("oversized index.json: error %v, want store.ErrTooLarge", err)
	}
	lied := t.TempDir()
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":1099511627776,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}`
	if err := os.WriteFile(filepath.Join(lied, "index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LayoutImage(st, lied, "latest", "", v1.Platform{OS: "linux", Architecture: "amd64"}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("oversized manifest: error %v, want store.ErrTooLarge", err)
	}
}

// TestLayoutHostileFiles: an OCI layout (a build context, or slimbuild import
// DIR) whose index.json, blobs directory or blobs are not regular files and
// directories of their own is refused, naming the path, before
// go-containerregistry opens them: a FIFO index.json made the read wait for
// ever, a symlinked index.json, blob or blob directory was read outside the
// layout.
func TestLayoutHostileFiles(t *testing.T) {
	// A store per case: one that holds the image already reads none of its blobs.
	newStore := func(t *testing.T) *store.Store {
		st, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	plat := v1.Platform{OS: "linux", Architecture: "amd64"}
	newLayout := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "layout")
		lp, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	blob := func(dir string) string { return filepath.Join(dir, "blobs", "sha256", layerDigest.Hex) }
	replace := func(t *testing.T, p string, make func(p string) error) {
		t.Helper()
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		if err := make(p); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("sound", func(t *testing.T) {
		if _, err := LayoutImage(newStore(t), newLayout(t), "latest", "", plat); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, dir string) string // returns the path the error names
	}{
		{"fifo blob", func(t *testing.T, dir string) string {
			replace(t, blob(dir), func(p string) error { return unix.Mkfifo(p, 0o644) })
			return blob(dir)
		}},
		{"symlinked blob", func(t *testing.T, dir string) string {
			data, err := os.ReadFile(blob(dir))
			if err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(outside, "blob")
			if err := os.WriteFile(target, data, 0o644); err != nil {
				t.Fatal(err)
			}
			replace(t, blob(dir), func(p string) error { return os.Symlink(target, p) })
			return blob(dir)
		}},
		{"fifo index.json", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "index.json")
			replace(t, p, func(p string) error { return unix.Mkfifo(p, 0o644) })
			return p
		}},
		{"symlinked index.json", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "index.json")
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(outside, "index.json")
			if err := os.WriteFile(target, data, 0o644); err != nil {
				t.Fatal(err)
			}
			replace(t, p, func(p string) error { return os.Symlink(target, p) })
			return p
		}},
		{"symlinked blobs directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "blobs", "sha256")
			target := filepath.Join(t.TempDir(), "sha256")
			if err := os.Rename(p, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, dir := newStore(t), newLayout(t)
			named := tc.attack(t, dir)
			done := make(chan error, 1)
			go func() {
				_, err := LayoutImage(st, dir, "latest", "", plat)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), named) {
					t.Fatalf("error %v, want one naming %s", err, named)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("reading the layout hung")
			}
			if _, _, err := openArchive(st, dir, kindOCILayout); err == nil || !strings.Contains(err.Error(), named) {
				t.Errorf("import: error %v, want one naming %s", err, named)
			}
		})
	}
}
