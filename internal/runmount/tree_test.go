package runmount

// Root-free tests of DirTree and LayersTree: the views are plain directories.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/source"
)

// memStats is a source.StatCache that keeps nothing.
type memStats struct{}

func (memStats) StatCache(string) ([]byte, error)  { return nil, os.ErrNotExist }
func (memStats) PutStatCache(string, []byte) error { return nil }

// dirView is a View over a directory; it records its removal.
type dirView struct {
	root    string
	removed bool
}

func (v *dirView) Root() string { return v.root }
func (v *dirView) Remove()      { v.removed = true }

// tree writes files (name → content; a "->" prefix makes a symlink) under a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(data, "->"); ok {
			err = os.Symlink(target, p)
		} else if strings.HasSuffix(name, "/") {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func TestDirTreeBind(t *testing.T) {
	dir := tree(t, map[string]string{"f": "x", "d/inner": "y", "esc": "->/etc"})
	c, err := source.OpenContext(memStats{}, dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		p        string
		writable bool
		wantView bool // a copy-on-write view is bound
		wantRO   bool
		wantErr  bool
	}{
		{name: "file is read-only even when writable", p: "f", writable: true, wantRO: true},
		{name: "read-only dir is bound as is", p: "d", wantRO: true},
		{name: "writable dir gets a view", p: "d", writable: true, wantView: true},
		{name: "dot-dot stays inside", p: "../../../etc", wantErr: true},
		{name: "symlink to the host's /etc stays inside", p: "esc/passwd", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var views []*dirView
			tr := DirTree(c, func(d string) (View, error) {
				if !within(dir, d) {
					t.Errorf("view asked of %s, outside the context", d)
				}
				v := &dirView{root: t.TempDir()}
				views = append(views, v)
				return v, nil
			})
			host, ro, release, err := tr.Bind(tc.p, tc.writable)
			if tc.wantErr {
				if err == nil && !within(dir, host) {
					t.Fatalf("bound %s, outside the context", host)
				}
				if err == nil && tc.wantErr {
					t.Fatalf("bound %s, want an error (nothing there inside the context)", host)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ro != tc.wantRO {
				t.Errorf("read-only %v, want %v", ro, tc.wantRO)
			}
			if got := len(views) == 1; got != tc.wantView {
				t.Fatalf("view made: %v, want %v", got, tc.wantView)
			}
			if tc.wantView {
				if host != views[0].root || release == nil {
					t.Fatalf("bound %s (release %v), want the view %s", host, release != nil, views[0].root)
				}
				release()
				if !views[0].removed {
					t.Error("release did not remove the view")
				}
			} else if !within(dir, host) || release != nil {
				t.Errorf("bound %s (release %v), want a path in the context and nothing to release", host, release != nil)
			}
		})
	}
}

func TestLayersTree(t *testing.T) {
	root := tree(t, map[string]string{"d/a": "a", "d/sub/b": "b", "f": "x", "link": "->/etc"})
	var views []*dirView
	tr := LayersTree("stage-key", func() (View, error) {
		v := &dirView{root: root}
		views = append(views, v)
		return v, nil
	})
	if k, _ := tr.Key("anything"); k != "stage-key" || tr.Local() {
		t.Errorf("key %q local %v, want the tree's key and not local", k, tr.Local())
	}

	t.Run("bind resolves symlinks inside the view", func(t *testing.T) {
		host, _, release, err := tr.Bind("link/passwd", true)
		if err != nil {
			t.Fatal(err)
		}
		// What the path leads to, links followed, must be in the view.
		if real, err := filepath.EvalSymlinks(host); !within(root, host) || (err == nil && !within(root, real)) {
			t.Errorf("bound %s (%s), outside the view %s", host, real, root)
		}
		release()
		if !views[len(views)-1].removed {
			t.Error("release did not remove the view")
		}
	})
	t.Run("seed copies a directory", func(t *testing.T) {
		dest := t.TempDir()
		if err := tr.CopyDir("d", dest); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "sub/b"} {
			if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
				t.Errorf("seed lacks %s: %v", p, err)
			}
		}
		if !views[len(views)-1].removed {
			t.Error("the view was not removed after seeding")
		}
	})
	for _, tc := range []struct{ name, p string }{
		{"seed of a file", "f"},
		{"seed through a symlink to the host", "link"},
		{"seed above the root", "../../.."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			err := tr.CopyDir(tc.p, dest)
			ents, _ := os.ReadDir(dest)
			if tc.p == "../../.." {
				// Resolved inside the view: the root itself, which is allowed.
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(dest, "d", "a")); err != nil {
					t.Errorf("../../.. did not resolve to the view's root: %v", err)
				}
				return
			}
			if err == nil || len(ents) != 0 {
				t.Errorf("error %v with %d entries copied, want an error and nothing", err, len(ents))
			}
			if !views[len(views)-1].removed {
				t.Error("the view was not removed after a failed seed")
			}
		})
	}
}
