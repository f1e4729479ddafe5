package build

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
)

// RunOptions describe `slimbuild run`.
type RunOptions struct {
	Args    []string // replaces the image's CMD when given
	Network runtime.Network
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Runc    string
	// BeforeStart, if set, is called with the container's root filesystem
	// (mounted) and network namespace (a file; "" for the host's) before
	// the process starts; its error stops the run. slim's observed closure
	// marks the filesystem for fanotify and reaches servers through it.
	BeforeStart func(rootfs, netns string) error
}

// Run starts img in runc on a throwaway overlay and returns the exit status.
// Nothing is left behind: the overlay, its upper directory and runc's state are
// removed whatever happens.
func Run(ctx context.Context, st *store.Store, img v1.Image, opts RunOptions) (int, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, err
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	b := &builder{st: st, opts: Options{Runc: opts.Runc}, beforeStart: opts.BeforeStart}
	defer b.close()
	args := append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	if len(opts.Args) > 0 {
		args = append(append([]string{}, cf.Config.Entrypoint...), opts.Args...)
	}
	if len(args) == 0 {
		return 0, fmt.Errorf("no command: the image has no ENTRYPOINT or CMD and none was given")
	}
	ws, err := b.mountWorkspace(layers)
	if err != nil {
		return 0, err
	}
	defer ws.Remove()
	wd := cf.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	return b.runContainer(ctx, ws, cf.Config.User, runtime.Process{
		Args: args, Env: withDefaultPath(cf.Config.Env), Cwd: wd, Network: opts.Network,
	}, runtime.Stdio{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr})
}
