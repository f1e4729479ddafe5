package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	runc "github.com/containerd/go-runc"

	"github.com/slimbuild/slimbuild/internal/runtime"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/snapshot"
)

// What a killed process can leave behind, all of it reclaimable: entries under
// tmp/, mounts under the root (build workspaces live in tmp/), runc containers
// whose state directory is tmp/*/runc (the engine's per-build runc --root) or
// whose cgroups a marker in tmp/*/runc.cgroups names (runtime.MarkerDir), and
// processes running with their root or working directory inside the store (those
// containers' processes). Only a process that holds the store alone may judge them
// stale; Open does so and reclaims them, Fsck reports them first.

// staleItem is one leftover found by findStale.
type staleItem struct {
	kind string // "container", "process", "mount" or "tmp"
	path string // state dir/ID, /proc/PID, mount point, tmp entry
	msg  string

	stateDir, id string // container
	pid          int    // process
}

// findStale lists what killed processes left. The caller must hold the store alone.
func (s *Store) findStale(ctx context.Context) []staleItem {
	var out []staleItem
	tmp := s.path("tmp")
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		stateDir := filepath.Join(tmp, e.Name(), runtime.StateDirName)
		for _, id := range runtime.StaleIDs(stateDir) {
			p, status := filepath.Join(stateDir, id), "unknown"
			if _, err := os.Lstat(p); err != nil {
				// Only its marker names it: runc was killed before it wrote its state.
				p, status = filepath.Join(runtime.MarkerDir(stateDir), id), "its state never written"
			} else if c := runcState(ctx, stateDir, id); c != nil {
				status = fmt.Sprintf("%s, pid %d", c.Status, c.Pid)
			}
			out = append(out, staleItem{kind: "container", path: p,
				msg: "runc container left by a killed process (" + status + ")", stateDir: stateDir, id: id})
		}
	}
	// A process of a killed build works in its entry in tmp/: with tmp/ empty there
	// is none to look for, and a build's Open need not read every process's links.
	var procs []int
	if len(ents) > 0 {
		procs = processesUnder(tmp)
	}
	for _, pid := range procs {
		out = append(out, staleItem{kind: "process", path: "/proc/" + strconv.Itoa(pid), pid: pid,
			msg: "process running inside the store"})
	}
	mnts, _ := snapshot.MountsUnder(s.root)
	for i := len(mnts) - 1; i >= 0; i-- { // deepest first
		out = append(out, staleItem{kind: "mount", path: mnts[i], msg: "mount left by a killed process"})
	}
	for _, e := range ents {
		out = append(out, staleItem{kind: "tmp", path: filepath.Join(tmp, e.Name()), msg: "temporary entry left by a killed process"})
	}
	return out
}

// reclaim removes one leftover: containers are killed and deleted, processes
// killed, mounts detached, tmp entries removed.
func (s *Store) reclaim(ctx context.Context, it staleItem) error {
	switch it.kind {
	case "container":
		return runtime.ReapContainer(ctx, it.stateDir, it.id)
	case "process":
		// Only runc itself (an orphaned "runc run" waiting in its bundle) and
		// the network hook runc started (waiting on its FIFO) are killed;
		// anything else there is someone's, and only reported.
		if !isOurs(it.pid, s.path("tmp")) {
			if b, err := os.ReadFile(filepath.Join(it.path, "cmdline")); err != nil || len(b) == 0 {
				return nil // gone meanwhile, or exited and waiting to be reaped
			}
			return fmt.Errorf("process %d is not runc; not killed", it.pid)
		}
		if err := unix.Kill(it.pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("killing process %d: %w", it.pid, err)
		}
		return nil
	case "mount":
		if err := unix.Unmount(it.path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %q: %w", it.path, err)
		}
		return nil
	case "tmp":
		if err := os.RemoveAll(it.path); err != nil {
			return fmt.Errorf("removing %q: %w", it.path, err)
		}
		return nil
	}
	return fmt.Errorf("unknown leftover kind %q", it.kind)
}

// isOurs reports whether process pid is runc working on a state dir under dir
// (argv[0] is runc and one argument names a path below dir; runc may run from
// a sealed copy of its binary, so /proc/PID/exe is not compared), or the
// network hook of a container under dir (runtime.IsNetReadyHook).
func isOurs(pid int, dir string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if runtime.IsNetReadyHook(args, dir) {
		return true
	}
	if len(args) < 2 || filepath.Base(args[0]) != "runc" {
		return false
	}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}

// runcState asks runc for one container's state; nil when runc cannot say.
func runcState(ctx context.Context, stateDir, id string) *runc.Container {
	path, err := exec.LookPath("runc")
	if err != nil {
		return nil
	}
	c, err := (&runc.Runc{Command: path, Root: stateDir}).State(ctx, id)
	if err != nil {
		return nil
	}
	return c
}

// processesUnder lists processes (other than this one) whose root or working
// directory is root or below it: an orphaned "runc run" works in its bundle. (A
// container's processes, in their own mount namespace, show their own root and
// working directory; those are found through runc's state.)
func processesUnder(root string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for _, l := range []string{"root", "cwd"} {
			t, err := os.Readlink(filepath.Join("/proc", e.Name(), l))
			if err != nil {
				continue
			}
			t = strings.TrimSuffix(t, " (deleted)")
			if t == root || strings.HasPrefix(t, root+"/") {
				out = append(out, pid)
				break
			}
		}
	}
	sort.Ints(out)
	return out
}

// cleanTmp reclaims everything killed processes left (see findStale). The caller
// holds the store alone.
func (s *Store) cleanTmp() {
	ctx := context.Background()
	for _, it := range s.findStale(ctx) {
		_ = s.reclaim(ctx, it)
	}
}
