package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/runtime"
)

// A build killed after it made a container's network FIFO, but before runc's
// hook opened it, leaves the hook waiting for a writer forever, working in the
// container's bundle. The next lone Open must kill it; a stranger's process
// that only works there is reported, never killed.
func TestOpenKillsStrandedNetworkHook(t *testing.T) {
	root := t.TempDir()
	st, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	bundle := filepath.Join(root, "tmp", "build-1", "step-1", "container")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(bundle, "netready")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Args[0] = "sh"
		cmd.Dir = bundle
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	hook := start("/bin/sh", "-c", runtime.NetReadyScript, fifo)
	stranger := start("/bin/sh", "-c", "sleep 60")
	exited := make(chan error, 1)
	go func() { exited <- hook.Wait() }()
	time.Sleep(100 * time.Millisecond) // let the hook reach its open of the FIFO

	st, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	select {
	case err := <-exited:
		ws, ok := hook.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("hook ended by %v, not killed by the reclaim", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stranded network hook still runs after the next Open")
	}
	if err := stranger.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process that is not slimbuild's was killed: %v", err)
	}
}

// A build killed while runc created a container (its cgroups made, its state not
// yet written) leaves cgroups that only the runner's marker names. The next lone
// Open must remove them, and only them: another cgroup beside them stays.
func TestOpenRemovesCgroupsOnlyAMarkerNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making cgroups needs root")
	}
	root := t.TempDir()
	st, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	hierarchy := firstCgroupMount(t)
	id, other := runtime.NewContainerID(), runtime.NewContainerID()
	leaked, kept := filepath.Join(hierarchy, id), filepath.Join(hierarchy, other)
	for _, d := range []string{leaked, kept} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("making cgroup: %v", err)
		}
		t.Cleanup(func() { unix.Rmdir(d) })
	}
	stateDir := filepath.Join(root, "tmp", "build-1", runtime.StateDirName)
	if err := os.MkdirAll(runtime.MarkerDir(stateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runtime.MarkerDir(stateDir), id), []byte(leaked+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	st, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Lstat(leaked); err == nil {
		t.Errorf("the cgroup %s that the marker names survived the next Open", leaked)
	}
	if _, err := os.Lstat(kept); err != nil {
		t.Errorf("the cgroup %s of another container was removed: %v", kept, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) > 0 {
		t.Errorf("tmp/ not reclaimed: %v", ents)
	}
}

// firstCgroupMount returns the mount point of a cgroup hierarchy.
func firstCgroupMount(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && (f[2] == "cgroup2" || f[2] == "cgroup") {
			return f[1]
		}
	}
	t.Fatal("no cgroup filesystem is mounted")
	return ""
}
