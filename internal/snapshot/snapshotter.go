package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Snapshotter makes the working trees of build steps, in the spirit of
// containerd's: Prepare mounts a writable overlay over parent directories with a
// fresh upper directory, View a read-only one, Commit hands a writable snapshot's
// changes (its upper directory, in overlay lower format) to whoever keeps them,
// Remove lets go of a snapshot. Each active snapshot lives in its own directory
// under Dir; committed trees belong to the caller (the store keeps them, see
// store.CommitSnapshot), so Dir must be on the same filesystem for Commit's
// rename to be cheap.
type Snapshotter struct {
	Dir string
}

// Active is a prepared or viewed snapshot: mounted at Root until Commit or Remove.
type Active struct {
	dir      string // holds upper, work and rootfs
	upper    string // empty for a view
	root     string
	readOnly bool
	mounted  bool
}

// Prepare mounts a writable overlay of parents (topmost first) with a fresh
// upper directory, volatile where the kernel knows the option (see the package
// documentation): whoever keeps the upper directory makes it durable. With no
// parents it is the upper directory itself.
func (s Snapshotter) Prepare(parents []string) (*Active, error) {
	a, err := s.newActive("step-", false)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(a.dir, "work")
	for _, d := range []string{a.upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(a.dir)
			return nil, fmt.Errorf("preparing snapshot: %w", err)
		}
	}
	ms := Overlay(parents, a.upper, work)
	err = MountAll(ms, a.root)
	if errors.Is(err, unix.EINVAL) && ms[0].Type == "overlay" {
		// A kernel before 5.10 refuses the option it does not know; the work
		// directory is made again in case the refused mount left anything in it.
		if err = os.RemoveAll(work); err == nil {
			err = os.Mkdir(work, 0o755)
		}
		if err == nil {
			err = MountAll(withoutVolatile(ms), a.root)
		}
	}
	return a, a.finishMount(err)
}

// View mounts parents (topmost first) read-only; with none, Root is an empty
// directory (the scratch filesystem).
func (s Snapshotter) View(parents []string) (*Active, error) {
	a, err := s.newActive("view-", true)
	if err != nil {
		return nil, err
	}
	ms := ReadOnly(parents)
	if len(ms) == 0 {
		return a, nil
	}
	return a, a.finishMount(MountAll(ms, a.root))
}

func (s Snapshotter) newActive(prefix string, readOnly bool) (*Active, error) {
	dir, err := os.MkdirTemp(s.Dir, prefix)
	if err != nil {
		return nil, fmt.Errorf("preparing snapshot: %w", err)
	}
	a := &Active{dir: dir, root: filepath.Join(dir, "rootfs"), readOnly: readOnly}
	if !readOnly {
		a.upper = filepath.Join(dir, "upper")
	}
	if err := os.Mkdir(a.root, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("preparing snapshot: %w", err)
	}
	return a, nil
}

// finishMount records the outcome of mounting the snapshot's root; on failure
// nothing of the snapshot stays.
func (a *Active) finishMount(err error) error {
	if err != nil {
		os.RemoveAll(a.dir)
		return fmt.Errorf("mounting overlay (is overlayfs available? try \"modprobe overlay\"): %w", err)
	}
	a.mounted = true
	return nil
}

// Root is where the snapshot's filesystem is mounted.
func (a *Active) Root() string { return a.root }

// Upper is where a prepared snapshot's changes land (overlay lower format); empty
// for a view.
func (a *Active) Upper() string { return a.upper }

// Dir is the snapshot's own directory: a place for scratch files of the step
// that are removed with it.
func (a *Active) Dir() string { return a.dir }

// Unmount detaches the snapshot's filesystem; the upper directory stays. Safe to
// call twice.
func (a *Active) Unmount() error {
	if !a.mounted {
		return nil
	}
	if err := Unmount(a.root); err != nil {
		return fmt.Errorf("unmounting %s: %w", a.root, err)
	}
	a.mounted = false
	return nil
}

// ErrView is returned by Commit for a read-only snapshot.
var ErrView = errors.New("a view has no changes to commit")

// Commit unmounts the snapshot and calls keep with its upper directory, which
// keep moves where it keeps committed trees (or leaves, to drop the changes).
// changed is false, and keep is not called, when the step changed nothing. The
// snapshot is removed afterwards either way.
func (a *Active) Commit(keep func(upper string) error) (changed bool, err error) {
	if a.readOnly {
		return false, ErrView
	}
	defer a.Remove()
	if err := a.Unmount(); err != nil {
		return false, err
	}
	ents, err := os.ReadDir(a.upper)
	if err != nil {
		return false, fmt.Errorf("committing snapshot: %w", err)
	}
	if len(ents) == 0 {
		return false, nil
	}
	return true, keep(a.upper)
}

// Remove unmounts the snapshot and removes what it still holds. When the unmount
// fails nothing is removed (removing below a live mount would reach its parents).
func (a *Active) Remove() {
	if a.Unmount() == nil {
		os.RemoveAll(a.dir)
	}
}
