package runmount

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// removeMountPoints on a crafted upper directory (no runc needed): mount points
// are removed, but never through a symlink the upper holds, whether it points
// outside (absolute or climbing with "..") or elsewhere inside.
func TestRemoveMountPointsStaysInUpper(t *testing.T) {
	tests := []struct {
		name string
		link func(canary string) string // the target of upper/a
	}{
		{"absolute symlink", func(c string) string { return c }},
		{"relative symlink climbing out", func(c string) string { return "../../../../../../../../../../../.." + c }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			canary := t.TempDir()
			if err := os.MkdirAll(filepath.Join(canary, "b", "c"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(canary, "b", "f"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			upper := t.TempDir()
			// The run's own mount points, moved away by it, and its symlink.
			if err := os.MkdirAll(filepath.Join(upper, "moved", "b", "c"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.link(canary), filepath.Join(upper, "a")); err != nil {
				t.Fatal(err)
			}
			// A genuine leftover mount point elsewhere, which must go.
			if err := os.MkdirAll(filepath.Join(upper, "run", "secrets"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(upper, "run", "secrets", "tok"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			removeMountPoints(upper, []string{"/a/b/c", "/a/b/f", "/run/secrets/tok"}, map[string]fs.FileInfo{})
			for _, p := range []string{"b", "b/c", "b/f"} {
				if _, err := os.Lstat(filepath.Join(canary, p)); err != nil {
					t.Errorf("canary %s: %v", p, err)
				}
			}
			if _, err := os.Lstat(filepath.Join(upper, "a")); err != nil {
				t.Errorf("the upper's symlink: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(upper, "run")); err == nil {
				t.Errorf("the leftover mount point /run/secrets/tok (and its parents) stayed")
			}
		})
	}
}

// TestPoints: what RecordPoints saw before the RUN decides what Remove takes
// from the upper directory: new empty mount points and the parents copied up
// only to hold them go; what existed before, or changed, stays.
func TestPoints(t *testing.T) {
	root, upper := t.TempDir(), t.TempDir()
	mkdir := func(base, p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(base, p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(base, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	write := func(base, p, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(base, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Before the RUN (its root): /data and /keep exist, /etc/hosts is a file.
	mkdir(root, "data", 0o755)
	mkdir(root, "keep", 0o755)
	mkdir(root, "etc", 0o755)
	write(root, "etc/hosts", "127.0.0.1 localhost\n")
	pts, err := RecordPoints(root, []string{"/data/m", "/keep/x", "/etc/hosts", "/new/dir/f"})
	if err != nil {
		t.Fatal(err)
	}
	// After it (its upper): each mount point left empty, /data copied up
	// unchanged, /keep's mode changed by the RUN, /etc/hosts emptied by it.
	mkdir(upper, "data/m", 0o755)
	mkdir(upper, "keep/x", 0o755)
	if err := os.Chmod(filepath.Join(upper, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	mkdir(upper, "etc", 0o755)
	write(upper, "etc/hosts", "")
	mkdir(upper, "new/dir", 0o755)
	write(upper, "new/dir/f", "")
	pts.Remove(upper)
	for p, want := range map[string]bool{
		"data": false, "keep/x": false, "keep": true, "etc/hosts": true, "new": false,
	} {
		_, err := os.Lstat(filepath.Join(upper, p))
		if got := err == nil; got != want {
			t.Errorf("%s in the upper after Remove: %v, want %v", p, got, want)
		}
	}
}
