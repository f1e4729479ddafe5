package engine_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// A RUN that moves its mount points' parent away and plants a symlink to a host
// directory in its place must not make the post-run cleanup of mount points
// delete that host directory's empty files and directories.
func TestMountPointCleanupStaysInUpper(t *testing.T) {
	st := newStore(t)
	canary := t.TempDir()
	// What the cleanup would look for through the planted symlink /a -> canary:
	// b/c (the tmpfs mount point, an empty dir), b/f (the bind mount point, an
	// empty file) and b itself once they are gone.
	if err := os.MkdirAll(filepath.Join(canary, "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "b", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
RUN --mount=type=tmpfs,target=/a/b/c --mount=type=bind,source=f,target=/a/b/f mv /a /moved && ln -s ` + canary + ` /a
`,
		"f": "",
	}, engine.Options{})
	for _, p := range []string{"b", "b/c", "b/f"} {
		if _, err := os.Lstat(filepath.Join(canary, p)); err != nil {
			t.Errorf("host canary %s: %v (the mount point cleanup followed the RUN's symlink)", p, err)
		}
	}
	// The planted symlink itself is the RUN's own change and stays in the image.
	fsys := fsOf(t, res.Image)
	if _, ok := fsys["a"]; !ok {
		t.Errorf("the RUN's symlink /a is missing from the image")
	}
}
