package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fsck exits 1 with one line per problem, repairs with --repair, and the store
// builds again afterwards.
func TestFsckCommand(t *testing.T) {
	root := tinyBase(t)
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nRUN echo built > /built\nCOPY f /f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "f"), []byte("file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := slimbuild(t, root, "build", "--progress", "quiet", "-t", "fsck:test", ctx); err != nil {
		t.Fatal(err)
	}
	if out, _, err := slimbuild(t, root, "fsck"); err != nil || out != "" {
		t.Fatalf("fsck of a fresh store: %q, %v", out, err)
	}

	// Damage the unpacked layer of the RUN step.
	built, _ := filepath.Glob(filepath.Join(root, "layers", "*", "built"))
	if len(built) != 1 {
		t.Fatalf("unpacked RUN layer: %v", built)
	}
	if err := os.WriteFile(built[0], []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := slimbuild(t, root, "fsck")
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("fsck of a damaged store: %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "layer layers/") {
		t.Errorf("fsck stdout = %q, want one layer line", out)
	}
	if !strings.Contains(errOut, "1 problems, 0 repaired") {
		t.Errorf("fsck summary = %q", errOut)
	}

	if out, _, err := slimbuild(t, root, "fsck", "--repair"); err != nil || !strings.Contains(out, "(repaired)") {
		t.Fatalf("fsck --repair: %q, %v", out, err)
	}
	if out, _, err := slimbuild(t, root, "fsck"); err != nil || out != "" {
		t.Fatalf("fsck after repair: %q, %v", out, err)
	}
	// The layer is unpacked again from its blob when the next build needs it.
	if err := os.WriteFile(filepath.Join(ctx, "f"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := slimbuild(t, root, "build", "--progress", "quiet", "-t", "fsck:test", ctx); err != nil {
		t.Fatalf("build after repair: %v", err)
	}
	b, err := os.ReadFile(built[0])
	if err != nil || string(b) != "built\n" {
		t.Errorf("re-made layer holds %q, %v", b, err)
	}
	if out, _, err := slimbuild(t, root, "fsck"); err != nil || out != "" {
		t.Fatalf("fsck after the rebuild: %q, %v", out, err)
	}
}
