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
// stateDir, or named by a marker beside it (see MarkerDir), which a killed process
// left behind; callers then may remove both directories. A missing stateDir is not
// an error.
func ReapStale(ctx context.Context, stateDir string) error {
	// The directories, not "runc list": a container whose state is half written
	// (or not written at all) is not listed but may still run.
	var errs []error
	for _, id := range StaleIDs(stateDir) {
		errs = append(errs, ReapContainer(ctx, stateDir, id))
	}
	return errors.Join(errs...)
}

// reapTimeout bounds how long ReapContainer waits for runc.
const reapTimeout = 30 * time.Second

// ReapContainer kills every process of container id in the runc state directory
// stateDir and deletes the container (which removes its cgroups), as well as the
// cgroups that id's marker names (see MarkerDir), then removes the marker. A
// container runc no longer knows, or knows as stopped, counts as reaped.
func ReapContainer(ctx context.Context, stateDir, id string) error {
	path, err := exec.LookPath("runc")
	if err != nil {
		return ErrRuncNotFound
	}
	ctx, cancel := context.WithTimeout(ctx, reapTimeout)
	defer cancel()
	ctl := &runc.Runc{Command: path, Root: stateDir}
	var delErr error
	if _, err := os.Lstat(filepath.Join(stateDir, id)); err == nil {
		// Every process, not only init: kill --all first, then delete --force.
		_ = ctl.Kill(ctx, id, int(unix.SIGKILL), &runc.KillOpts{All: true})
		delErr = ctl.Delete(ctx, id, &runc.DeleteOpts{Force: true})
	}
	// A runc killed while it created the container leaves its init process in the
	// container's cgroup with no state that runc could act on: find it by its cgroup.
	if err := killCgroup(id, markedCgroups(stateDir, id)); err != nil {
		return fmt.Errorf("reaping stale container %q: %w", id, err)
	}
	if _, err := os.Lstat(filepath.Join(stateDir, id)); err == nil {
		if c, err := ctl.State(ctx, id); err == nil && c.Status != "stopped" {
			return fmt.Errorf("reaping stale container %q: %v", id, delErr)
		}
	}
	unmark(stateDir, id)
	return nil
}

// killCgroup SIGKILLs every process whose cgroup (in any hierarchy) is named id,
// runc's default cgroup path for a container, and removes the emptied cgroups:
// marked (the directories id's marker names) and those named id at the top of
// each hierarchy. Only ids slimbuild gives its containers are looked for.
func killCgroup(id string, marked []string) error {
	if !ownContainerID.MatchString(id) {
		return nil
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
	dirs = append(append(dirs, "/sys/fs/cgroup/"+id), marked...)
	var errs []error
	for _, d := range dirs {
		errs = append(errs, removeCgroup(d))
	}
	return errors.Join(errs...)
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
