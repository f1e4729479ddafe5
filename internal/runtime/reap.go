package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
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
	// The directory, not "runc list": a container whose state is half written is
	// not listed but may still run.
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return fmt.Errorf("reading stale state %q: %w", stateDir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, ReapContainer(ctx, stateDir, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// reapTimeout bounds how long ReapContainer waits for runc.
const reapTimeout = 30 * time.Second

// ReapContainer kills every process of container id in the runc state directory
// stateDir and deletes the container (which removes its cgroup). A container runc
// no longer knows, or knows as stopped, counts as reaped.
func ReapContainer(ctx context.Context, stateDir, id string) error {
	path, err := exec.LookPath("runc")
	if err != nil {
		return ErrRuncNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, reapTimeout)
	defer cancel()
	ctl := &runc.Runc{Command: path, Root: stateDir}
	// Every process, not only init: kill --all first, then delete --force.
	_ = ctl.Kill(ctx, id, int(unix.SIGKILL), &runc.KillOpts{All: true})
	delErr := ctl.Delete(ctx, id, &runc.DeleteOpts{Force: true})
	// A runc killed while it created the container leaves its init process in the
	// container's cgroup with no state that runc could act on: find it by its cgroup.
	killCgroup(id)
	if _, err := os.Lstat(filepath.Join(stateDir, id)); err != nil {
		return nil
	}
	if c, err := ctl.State(ctx, id); err == nil && c.Status != "stopped" {
		return fmt.Errorf("reaping stale container %q: %v", id, delErr)
	}
	return nil
}

// killCgroup SIGKILLs every process whose cgroup (in any hierarchy) is named id,
// runc's default cgroup path for a container, and removes the emptied cgroups.
// Only ids slimbuild gives its containers are looked for.
func killCgroup(id string) {
	if !ownContainerID.MatchString(id) {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile("/proc/" + p.Name() + "/cgroup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			// hierarchy-ID:controllers:path
			if f := strings.SplitN(line, ":", 3); len(f) == 3 && path.Base(f[2]) == id {
				_ = unix.Kill(pid, unix.SIGKILL)
				break
			}
		}
	}
	// The cgroups themselves (empty once their processes are reaped by init).
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	dirs = append(dirs, "/sys/fs/cgroup/"+id)
	for _, d := range dirs {
		for i := 0; i < 20; i++ {
			if err := unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// ownContainerID matches the ids slimbuild gives its containers.
var ownContainerID = regexp.MustCompile(`^slimbuild-[0-9a-f]{8,64}$`)

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
