package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	runc "github.com/containerd/go-runc"
)

// StateDirName is the name of the runc state directory (--root) inside a run's
// temporary directory, where ReapStale looks.
const StateDirName = "runc"

// ReapStale kills and deletes every container recorded in the runc state directory
// stateDir, which a killed process left behind; callers then may remove the
// directory. A missing stateDir is not an error.
func ReapStale(ctx context.Context, stateDir string) error {
	fi, err := os.Lstat(stateDir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && !fi.IsDir()) {
		return nil // no state dir (or its parent is a file): nothing ran there
	}
	if err != nil {
		return fmt.Errorf("reading stale state %q: %w", stateDir, err)
	}
	path, err := exec.LookPath("runc")
	if err != nil {
		return ErrRuncNotFound
	}
	ctl := &runc.Runc{Command: path, Root: stateDir}
	list, err := ctl.List(ctx)
	if err != nil {
		return fmt.Errorf("listing stale containers in %q: %w", stateDir, err)
	}
	var errs []error
	for _, c := range list {
		// delete --force sends SIGKILL to every process of the container first.
		if err := ctl.Delete(ctx, c.ID, &runc.DeleteOpts{Force: true}); err != nil {
			errs = append(errs, fmt.Errorf("deleting stale container %q: %w", c.ID, err))
		}
	}
	// A container runc no longer lists (its state half written) still has a directory.
	entries, _ := os.ReadDir(stateDir)
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(stateDir, e.Name(), "state.json")); err == nil {
			errs = append(errs, fmt.Errorf("stale container %q remains", e.Name()))
		}
	}
	return errors.Join(errs...)
}

// watchdog is a small process that deletes a container (runc delete --force) when this
// process dies without doing so: it reads a pipe whose only writer is this process and
// acts on end of file. stop ends it when the container is gone by ordinary means.
type watchdog struct {
	cmd *exec.Cmd
	w   *os.File
}

func startWatchdog(runcPath, stateDir, id string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The shell's read returns at end of file: when every writer is gone, which is
	// when this process is (the write end is close-on-exec and held by nobody else).
	cmd := exec.Command("/bin/sh", "-c", `read _ || :; exec "$0" --root "$1" delete --force "$2" >/dev/null 2>&1`, runcPath, stateDir, id)
	cmd.Stdin = r
	// Its own process group, so a terminal's signals reach only slimbuild.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting container watchdog: %w", err)
	}
	return &watchdog{cmd: cmd, w: w}, nil
}

// stop kills the watchdog before it acts and reaps it.
func (d *watchdog) stop() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d.w.Close()
}
