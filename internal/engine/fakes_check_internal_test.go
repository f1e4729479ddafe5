package engine

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirSnapshotter checks the fake itself: a snapshot sees its parents
// stacked, and its upper directory holds exactly what the step changed.
func TestDirSnapshotter(t *testing.T) {
	lower, upper1 := t.TempDir(), t.TempDir()
	write := func(dir string, files map[string]string) {
		for p, c := range files {
			hp := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hp, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(lower, map[string]string{"a": "lower", "d/keep": "k", "d/change": "old"})
	write(upper1, map[string]string{"a": "upper"})
	sn := &dirSnapshotter{dir: t.TempDir()}

	a, err := sn.Prepare([]string{upper1, lower})
	if err != nil {
		t.Fatal(err)
	}
	seen, err := scanTree(a.Root())
	if err != nil {
		t.Fatal(err)
	}
	if got := seen["a"].content; got != "upper" {
		t.Errorf("a is %q in the stacked root, want the upper parent's", got)
	}
	write(a.Root(), map[string]string{"d/change": "new", "n/new": "n"})
	var committed map[string]string
	changed, err := a.Commit(func(upper string) error {
		tree, err := scanTree(upper)
		committed = map[string]string{}
		for p, e := range tree {
			if e.mode.IsRegular() {
				committed[p] = e.content
			}
		}
		return err
	})
	if err != nil || !changed {
		t.Fatalf("commit: changed %v, %v", changed, err)
	}
	if want := map[string]string{"d/change": "new", "n/new": "n"}; !maps.Equal(committed, want) {
		t.Errorf("upper holds %v, want %v", committed, want)
	}

	// Nothing changed: nothing to keep.
	a, err = sn.Prepare([]string{lower})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := a.Commit(func(string) error { t.Error("keep called for no change"); return nil }); changed || err != nil {
		t.Errorf("commit of no change: %v, %v", changed, err)
	}

	// A deletion needs a whiteout, which the fake cannot make.
	a, err = sn.Prepare([]string{lower})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(a.Root(), "a"))
	if _, err := a.Commit(func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "whiteout") {
		t.Errorf("commit of a deletion: %v, want a whiteout error", err)
	}
	if left, _ := os.ReadDir(sn.dir); len(left) != 0 {
		t.Errorf("%d snapshot(s) left after commit", len(left))
	}
}
