package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrRuncNotFound is returned by Run when the runc binary cannot be found.
var ErrRuncNotFound = errors.New(`runc not found: install it with "apt-get install runc"`)

// defaultStateDir is runc's own default --root for root.
const defaultStateDir = "/run/runc"

// killInterval is how often Run re-sends SIGKILL after cancellation until runc returns;
// the container may not exist yet when ctx is cancelled.
const killInterval = 50 * time.Millisecond

// ioWaitDelay bounds how long Run waits for the output copies once runc has exited.
const ioWaitDelay = 5 * time.Second

// Run writes a bundle in bundleDir (config.json only; rootfs is spec.Root.Path), runs the
// container to completion as id, and returns its exit status. When ctx is cancelled the
// container is killed and deleted before Run returns. Nothing is left in runc's state.
func (r *Runner) Run(ctx context.Context, id, bundleDir string, spec *specs.Spec, stdio Stdio) (int, error) {
	bin := r.Runc
	if bin == "" {
		bin = "runc"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return -1, ErrRuncNotFound
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	if err := writeConfig(bundleDir, FitRlimits(spec)); err != nil {
		return -1, err
	}
	logFile, err := os.CreateTemp(bundleDir, ".runc-log-*.json")
	if err != nil {
		return -1, fmt.Errorf("creating runc log in %q: %w", bundleDir, err)
	}
	logFile.Close()
	defer os.Remove(logFile.Name())

	// runc only logs for the run command so its log holds nothing but run's errors.
	// runc dies with this process (SIGKILL on parent death); its container would not,
	// so a watchdog deletes it then.
	runRunc := &runc.Runc{Command: path, Root: r.StateDir, Log: logFile.Name(), LogFormat: runc.JSON, PdeathSignal: unix.SIGKILL}
	ctl := &runc.Runc{Command: path, Root: r.StateDir}
	// runc itself must outlive ctx: killing runc run would orphan the container.
	bg := context.WithoutCancel(ctx)
	// runc makes the container's cgroups before its state: record them first, for
	// the reaper of a process killed in between (see MarkerDir).
	if r.StateDir != "" {
		if err := markCgroups(r.StateDir, id); err != nil {
			return -1, err
		}
	}
	wd, err := startWatchdog(path, r.stateDir(), id)
	if err != nil {
		r.unmark(id)
		return -1, err
	}
	defer wd.stop()

	done := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		tick := time.NewTicker(killInterval)
		defer tick.Stop()
		for {
			_ = ctl.Kill(bg, id, int(unix.SIGKILL), nil)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	// The parent-death signal follows the thread that starts runc: keep this goroutine
	// on one thread until runc is done, so that it is this process's death that counts.
	goruntime.LockOSThread()
	status, runErr := runRunc.Run(bg, id, bundleDir, &runc.CreateOpts{IO: stdioIO{stdio}})
	goruntime.UnlockOSThread()
	close(done)
	<-killerDone

	if err := r.forceDelete(bg, ctl, id); err != nil {
		return -1, err
	}
	r.unmark(id)
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	var exitErr *runc.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return -1, fmt.Errorf("running container %q: %w", id, runErr)
	}
	if status != 0 {
		if msg := runcErrors(logFile.Name()); msg != "" {
			return status, fmt.Errorf("running container %q: %s", id, msg)
		}
	}
	return status, nil
}

// forceDelete runs "runc delete --force" unless runc's state holds nothing of id
// (runc run deletes a container that exits by itself), and checks that it then does not.
func (r *Runner) forceDelete(ctx context.Context, ctl *runc.Runc, id string) error {
	if _, err := os.Lstat(filepath.Join(r.stateDir(), id)); errors.Is(err, os.ErrNotExist) {
		return nil // deleted by runc run: no second runc process needed
	}
	delErr := ctl.Delete(ctx, id, &runc.DeleteOpts{Force: true})
	if _, err := os.Lstat(filepath.Join(r.stateDir(), id)); err == nil {
		if delErr == nil {
			delErr = errors.New("state directory remains")
		}
		return fmt.Errorf("deleting container %q: %w", id, delErr)
	}
	return nil
}

// unmark removes container id's marker once runc has deleted the container.
func (r *Runner) unmark(id string) {
	if r.StateDir != "" {
		unmark(r.StateDir, id)
	}
}

func (r *Runner) stateDir() string {
	if r.StateDir == "" {
		return defaultStateDir
	}
	return r.StateDir
}

func writeConfig(bundleDir string, spec *specs.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding runtime spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundleDir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("writing bundle %q: %w", bundleDir, err)
	}
	return nil
}

// runcErrors returns the error messages runc logged (JSON lines), joined.
func runcErrors(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msgs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		if entry.Level == "error" || entry.Level == "fatal" {
			msgs = append(msgs, entry.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// stdioIO hands the caller's reader and writers to the runc process, which passes its
// stdio on to the container (terminal is false). Writers that are not *os.File are fed
// through pipes by os/exec, so output streams while the container runs.
type stdioIO struct{ s Stdio }

var _ runc.IO = stdioIO{}

func (stdioIO) Close() error          { return nil }
func (stdioIO) Stdin() io.WriteCloser { return nil }
func (stdioIO) Stdout() io.ReadCloser { return nil }
func (stdioIO) Stderr() io.ReadCloser { return nil }
func (i stdioIO) Set(cmd *exec.Cmd) {
	if i.s.Stdin != nil {
		cmd.Stdin = i.s.Stdin
	}
	if i.s.Stdout != nil {
		cmd.Stdout = i.s.Stdout
	}
	if i.s.Stderr != nil {
		cmd.Stderr = i.s.Stderr
	}
	cmd.WaitDelay = ioWaitDelay
}
