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
