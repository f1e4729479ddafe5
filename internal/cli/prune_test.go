package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyBase imports a root filesystem holding only busybox as busybox:latest.
func tinyBase(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for runc and overlayfs")
	}
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs /bin/busybox (busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, _, err := slimbuild(t, root, "import", rootfs, "busybox"); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestPruneKeepStorage(t *testing.T) {
	root := tinyBase(t)
	ctx := t.TempDir()
	// build returns build's stderr, where plain progress marks cache hits.
	build := func(content string) string {
		t.Helper()
		os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nRUN busybox head -c 200000 /dev/urandom > /blob\nCOPY f /f\n"), 0o644)
		os.WriteFile(filepath.Join(ctx, "f"), []byte(content), 0o644)
		_, stderr, err := slimbuild(t, root, "build", "--progress", "plain", "-t", "app", ctx)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, stderr)
		}
		return stderr
	}
	build("one")
	build("two") // the COPY of "one" is now kept by the cache alone

	out, _, err := slimbuild(t, root, "df")
	if err != nil || !strings.Contains(out, "Build cache") {
		t.Fatalf("df: %v\n%s", err, out)
	}
	if _, _, err := slimbuild(t, root, "prune"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(build("one"), "CACHED"); got != 2 {
		t.Errorf("after a plain prune, rebuilding hit the cache %d times, want 2", got)
	}
	out, _, err = slimbuild(t, root, "prune", "--keep-storage", "1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "removed 0 blobs") {
		t.Errorf("prune --keep-storage 1 removed nothing: %s", out)
	}
	// What names refer to survives, and still runs.
	out, _, err = slimbuild(t, root, "run", "app", "busybox", "cat", "/f")
	if err != nil || out != "one" {
		t.Errorf("run after prune: %v, %q", err, out)
	}
	if got := strings.Count(build("one"), "CACHED"); got != 0 {
		t.Errorf("after prune --keep-storage 1, rebuilding hit the cache %d times, want 0", got)
	}
}
