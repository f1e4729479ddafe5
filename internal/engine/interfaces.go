package engine

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/snapshot"
	"github.com/slimbuild/slimbuild/internal/store"
)

// The engine reaches the machine through three small interfaces: an Unpacker
// gives the directories of layers, a Snapshotter makes the working tree of each
// filesystem step over such directories, a Runner runs RUN's process in it. A
// build uses the store's unpacked layers, package snapshot's overlays and
// package runtime's runc launcher, which need root; the engine's own tests
// give it plain directories and a recorder instead (fakes_internal_test.go),
// so that its planning, keys, scoping and ordering are tested without root.
//
// Owners are the fourth thing that needs root: COPY, ADD and WORKDIR set the
// owners of what they write (an ADD's archive entries included) through the
// builder's lchown, a source.Chowner that is os.Lchown in a build and a
// recorder in those tests. It is given host paths already resolved inside the
// step's root and must not follow a symlink.

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

// Unpacker gives the unpacked directories of layers (overlay lower format,
// topmost first), unpacking them when needed; a snapshot layer's directory is
// its snapshot.
type Unpacker interface {
	LowerDirs(layers []v1.Layer) ([]string, error)
}

// Runner runs a process in a prepared root and returns its exit status.
type Runner interface {
	RunContainer(ctx context.Context, c runtime.Container) (int, error)
}

var (
	_ Active      = (*snapshot.Active)(nil)
	_ Runner      = (*runtime.Runner)(nil)
	_ Unpacker    = (*store.Store)(nil)
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
