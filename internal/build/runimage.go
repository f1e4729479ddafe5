package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/store"
)

// RunOptions describe `slimbuild run`.
type RunOptions struct {
	Args    []string // replaces the image's CMD when given
	Network string   // "host" or "none" (default)
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Runc    string
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
	b := &builder{st: st}
	defer b.close()
	if opts.Runc == "" {
		opts.Runc = "runc"
	}
	if _, err := exec.LookPath(opts.Runc); err != nil {
		return 0, ErrNoRunc
	}
	if opts.Network == "" {
		opts.Network = "none"
	}
	ws, err := b.mountWorkspace(layers)
	if err != nil {
		return 0, err
	}
	defer ws.release()
	args := append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	if len(opts.Args) > 0 {
		args = append(append([]string{}, cf.Config.Entrypoint...), opts.Args...)
	}
	if len(args) == 0 {
		return 0, fmt.Errorf("no command: the image has no ENTRYPOINT or CMD and none was given")
	}
	user, err := runtime.ResolveUser(ws.rootfs, cf.Config.User)
	if err != nil {
		return 0, err
	}
	wd := cf.Config.WorkingDir
	if wd == "" {
		wd = "/"
	}
	env := cf.Config.Env
	hasPath := false
	for _, e := range env {
		if len(e) > 5 && e[:5] == "PATH=" {
			hasPath = true
		}
	}
	if !hasPath {
		env = append([]string{defaultPath}, env...)
	}
	var mounts []specs.Mount
	if opts.Network == "host" {
		mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"rbind", "ro"}})
	}
	netns, err := loopbackNS(ws, opts.Network)
	if err != nil {
		return 0, err
	}
	spec := runtime.Spec(ws.rootfs, runtime.Process{
		Args: args, Env: env, Cwd: wd, UID: user.UID, GID: user.GID, AddGIDs: withPrimary(user),
		Hostname: "slimbuild", Network: opts.Network, NetNS: netns, Mounts: mounts,
	})
	bundle := filepath.Join(ws.dir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return 0, err
	}
	runner := &runtime.Runner{Runc: opts.Runc, StateDir: b.runDir}
	return runner.Run(ctx, "slimbuild-run-"+randomID(), bundle, spec, runtime.Stdio{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr})
}
