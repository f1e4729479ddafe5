package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/store"
)

// TestImportOversizedJSON: a manifest or config over the limits is refused
// with a clear error, not read into memory.
func TestImportOversizedJSON(t *testing.T) {
	pad := func(n int) string { return `[{"Config":"c.json","RepoTags":[],"Layers":[]}]` + strings.Repeat(" ", n) }
	writeTar := func(t *testing.T, files map[string]string) string {
		p := filepath.Join(t.TempDir(), "img.tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		for _, name := range []string{"manifest.json", "c.json"} {
			data := files[name]
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(data))
		}
		tw.Close()
		f.Close()
		return p
	}
	layoutDir := func(t *testing.T, index string) string {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		os.WriteFile(filepath.Join(d, "index.json"), []byte(index), 0o644)
		return d
	}
	tests := []struct {
		name string
		src  func(t *testing.T) string
		want string
	}{
		{"docker manifest.json 5 MiB", func(t *testing.T) string {
			return writeTar(t, map[string]string{"manifest.json": pad(5 << 20), "c.json": "{}"})
		}, "manifest.json"},
		{"docker config 9 MiB", func(t *testing.T) string {
			return writeTar(t, map[string]string{"manifest.json": pad(0), "c.json": "{}" + strings.Repeat(" ", 9<<20)})
		}, "c.json"},
		{"OCI index.json 5 MiB", func(t *testing.T) string {
			return layoutDir(t, `{"schemaVersion":2,"manifests":[]}`+strings.Repeat(" ", 5<<20))
		}, "index.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_, err = Import(context.Background(), st, tt.src(t), "")
			if !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Import: %v, want ErrTooLarge naming %s", err, tt.want)
			}
		})
	}
}
