package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is what BuildKit puts in Env when an image sets no PATH.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// WithDefaultPath returns env with DefaultPath first when it sets no PATH.
func WithDefaultPath(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return env
		}
	}
	return append([]string{DefaultPath}, env...)
}

// ImageConfig is what running an image takes from its config.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
}

// ImageRun describes `slimbuild run` of an image, and slim's runs of one.
type ImageRun struct {
	// Rootfs is the image's filesystem, mounted writable by the caller (a
	// throwaway snapshot); Dir a new private directory for the run's files,
	// which the caller removes; StateDir runc's state directory (--root), a
	// StateDirName directory where the store's reaper looks after a killed
	// slimbuild.
	Rootfs, Dir, StateDir string
	Config                ImageConfig
	// Args replace the image's CMD when given.
	Args    []string
	Network Network
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Runc    string
	// BeforeStart is Container.BeforeStart.
	BeforeStart func(rootfs, netns string) error
}

// ErrNoCommand is returned by RunImage for an image with nothing to run.
var ErrNoCommand = errors.New("no command: the image has no ENTRYPOINT or CMD and none was given")

// RunImage runs the image's ENTRYPOINT and CMD (or Args) as its USER in its
// WORKDIR, and returns the exit status.
func RunImage(ctx context.Context, r ImageRun) (int, error) {
	cfg := r.Config
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(r.Args) > 0 {
		args = append(append([]string{}, cfg.Entrypoint...), r.Args...)
	}
	if len(args) == 0 {
		return 0, ErrNoCommand
	}
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	dir := filepath.Join(r.Dir, "container")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return 0, fmt.Errorf("running image: %w", err)
	}
	runner := &Runner{Runc: r.Runc, StateDir: r.StateDir}
	return runner.RunContainer(ctx, Container{
		ID: NewContainerID(), Rootfs: r.Rootfs, Dir: dir, User: cfg.User,
		Process:     Process{Args: args, Env: WithDefaultPath(cfg.Env), Cwd: wd, Network: r.Network},
		Stdio:       Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr},
		BeforeStart: r.BeforeStart,
	})
}
