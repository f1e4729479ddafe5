package engine

import (
	"context"

	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/snapshot"
)

// The engine reaches the machine through two small interfaces: a Snapshotter
// makes the working tree of each filesystem step, a Runner runs RUN's process
// in it. A build uses package snapshot's overlays and package runtime's runc
// launcher, which need root; the engine's own tests give it plain directories
// and a recorder instead (fakes_internal_test.go), so that its planning, keys,
// scoping and ordering are tested without root.

// Snapshotter makes the working trees of filesystem steps.
type Snapshotter interface {
	// Prepare makes a writable tree over parents (directories in overlay lower
	// format, topmost first); with none it is empty.
	Prepare(parents []string) (Active, error)
}

// Active is a prepared tree, as snapshot.Active describes it: the step's
// filesystem at Root until Unmount, its changes in Upper (overlay lower
// format: new and changed files, deletions as whiteouts), scratch space of
// the step in Dir.
type Active interface {
	Root() string
	Upper() string
	Dir() string
	// Unmount detaches Root; Upper stays. Safe to call twice.
	Unmount() error
	// Commit unmounts and hands Upper to keep, unless nothing changed; the
	// snapshot is removed afterwards either way.
	Commit(keep func(upper string) error) (changed bool, err error)
	// Remove lets go of the snapshot and what it still holds.
	Remove()
}

// Runner runs a process in a prepared root and returns its exit status.
type Runner interface {
	RunContainer(ctx context.Context, c runtime.Container) (int, error)
}

var (
	_ Active      = (*snapshot.Active)(nil)
	_ Runner      = (*runtime.Runner)(nil)
	_ Snapshotter = overlays{}
)

// overlays is package snapshot's Snapshotter as the engine's.
type overlays struct{ snapshot.Snapshotter }

func (o overlays) Prepare(parents []string) (Active, error) {
	a, err := o.Snapshotter.Prepare(parents)
	if err != nil {
		return nil, err
	}
	return a, nil
}
