package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/store"
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
