package layer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A real file named .wh.* would ship as a whiteout: Writer refuses it, naming
// the path the image would have, however it got into the tree.
func TestWriteRefusesReservedNames(t *testing.T) {
	tests := []struct {
		name  string
		files []string // created under the tree; a trailing "/" makes a directory
		write func(w *Writer, dir string) error
		want  string // the path the error names
	}{
		{
			name:  "file in an upper dir",
			files: []string{"etc/", "etc/.wh.passwd"},
			write: func(_ *Writer, dir string) error { return Write(io.Discard, dir, WriteOptions{}) },
			want:  "/etc/.wh.passwd",
		},
		{
			name:  "opaque marker as a file",
			files: []string{"usr/", "usr/.wh..wh..opq"},
			write: func(_ *Writer, dir string) error { return Write(io.Discard, dir, WriteOptions{}) },
			want:  "/usr/.wh..wh..opq",
		},
		{
			name:  "directory",
			files: []string{".wh.opt/", ".wh.opt/f"},
			write: func(_ *Writer, dir string) error { return Write(io.Discard, dir, WriteOptions{}) },
			want:  "/.wh.opt",
		},
		{
			name:  "tree added at a destination",
			files: []string{"src/", "src/.wh.foo"},
			write: func(w *Writer, dir string) error { return w.Add(filepath.Join(dir, "src"), "app", AddOptions{}) },
			want:  "/app/.wh.foo",
		},
		{
			name:  "file added under a reserved name",
			files: []string{"f"},
			write: func(w *Writer, dir string) error { return w.Add(filepath.Join(dir, "f"), "app/.wh.f", AddOptions{}) },
			want:  "/app/.wh.f",
		},
		{
			name:  "parent directory entry",
			write: func(w *Writer, _ string) error { return w.Mkdir(".wh.app", 0o755, Owner{}, time.Now()) },
			want:  "/.wh.app",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				if strings.HasSuffix(f, "/") {
					must(t, os.MkdirAll(p, 0o755))
				} else {
					must(t, os.WriteFile(p, []byte("x"), 0o644))
				}
			}
			w := NewWriter(io.Discard)
			defer w.release()
			err := tc.write(w, dir)
			if !errors.Is(err, ErrReservedName) {
				t.Fatalf("error %v, want ErrReservedName", err)
			}
			if !strings.Contains(err.Error(), tc.want+": ") {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

// Whiteouts that overlayfs made stay whiteouts: only real files are refused.
func TestWriteKeepsOverlayWhiteouts(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	must(t, unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(t, unix.Setxattr(filepath.Join(dir, "d"), overlayOpaqueXattr, []byte("y"), 0))
	if err := Write(io.Discard, dir, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}
