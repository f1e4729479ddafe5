package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestSnapshotterLifecycle(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	lower := filepath.Join(base, "lower")
	mkdirs(t, lower)
	writeFile(t, filepath.Join(lower, "base"), "from the parent\n")
	sn := Snapshotter{Dir: filepath.Join(base, "active")}
	mkdirs(t, sn.Dir)

	// Prepare: writable over the parent; Commit hands over only the changes.
	a, err := sn.Prepare([]string{lower})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(a.Root(), "base")); got != "from the parent\n" {
		t.Errorf("prepared root has base = %q", got)
	}
	writeFile(t, filepath.Join(a.Root(), "new"), "made by the step\n")
	kept := filepath.Join(base, "committed")
	changed, err := a.Commit(func(upper string) error { return os.Rename(upper, kept) })
	if err != nil || !changed {
		t.Fatalf("Commit = %v, %v", changed, err)
	}
	if got := readFile(t, filepath.Join(kept, "new")); got != "made by the step\n" {
		t.Errorf("committed tree has new = %q", got)
	}
	assertMissing(t, filepath.Join(kept, "base"))
	assertMissing(t, filepath.Join(lower, "new"))
	if ents, _ := os.ReadDir(sn.Dir); len(ents) != 0 {
		t.Errorf("Commit left %d entries in the snapshotter's dir", len(ents))
	}

	// A step that changes nothing commits nothing.
	a, err = sn.Prepare([]string{kept, lower})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	if changed, err := a.Commit(func(string) error { called = true; return nil }); changed || called || err != nil {
		t.Errorf("Commit of an unchanged snapshot = %v (keep called %v), %v", changed, called, err)
	}

	// View: read-only, nothing to commit.
	v, err := sn.View([]string{kept, lower})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Root(), "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a view: %v, want EROFS", err)
	}
	if _, err := v.Commit(func(string) error { return nil }); !errors.Is(err, ErrView) {
		t.Errorf("Commit of a view: %v, want ErrView", err)
	}
	v.Remove()

	// A view of nothing is the empty (scratch) filesystem.
	v, err = sn.View(nil)
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(v.Root()); err != nil || len(ents) != 0 {
		t.Errorf("view of no parents: %d entries, %v", len(ents), err)
	}
	v.Remove()
	if ents, _ := os.ReadDir(sn.Dir); len(ents) != 0 {
		t.Errorf("Remove left %d entries in the snapshotter's dir", len(ents))
	}
}

// superOptions returns the file system options of the mount at target, from
// /proc/self/mountinfo (the field after the source).
func superOptions(t *testing.T, target string) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) { return i.Mountpoint != target, false })
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) == 0 {
		t.Fatalf("%s is not a mount point", target)
	}
	return strings.Split(infos[len(infos)-1].VFSOptions, ",") // the last mount on target wins
}

// TestPrepareIsVolatile checks that a step's overlay does not sync the host's
// filesystem (at unmount, syncfs or a process's fsync): the store makes the
// committed tree durable itself, once.
func TestPrepareIsVolatile(t *testing.T) {
	requireOverlay(t)
	base := scratch(t)
	lower := filepath.Join(base, "lower")
	mkdirs(t, lower)
	writeFile(t, filepath.Join(lower, "base"), "from the parent\n")
	sn := Snapshotter{Dir: filepath.Join(base, "active")}
	mkdirs(t, sn.Dir)

	a, err := sn.Prepare([]string{lower})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Remove()
	// Linux 6.5 and later show the option as fsync=volatile.
	if opts := superOptions(t, a.Root()); !slices.Contains(opts, "volatile") && !slices.Contains(opts, "fsync=volatile") {
		t.Errorf("prepared overlay has options %v, want volatile (or fsync=volatile) among them", opts)
	}
	writeFile(t, filepath.Join(a.Root(), "new"), "made by the step\n")
	kept := filepath.Join(base, "committed")
	if changed, err := a.Commit(func(upper string) error { return os.Rename(upper, kept) }); err != nil || !changed {
		t.Fatalf("Commit = %v, %v", changed, err)
	}
	if got := readFile(t, filepath.Join(kept, "new")); got != "made by the step\n" {
		t.Errorf("committed tree has new = %q", got)
	}

	// The committed tree serves as a lower again, under a new volatile overlay.
	b, err := sn.Prepare([]string{kept, lower})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Remove()
	if got := readFile(t, filepath.Join(b.Root(), "new")); got != "made by the step\n" {
		t.Errorf("next step sees new = %q", got)
	}
}
