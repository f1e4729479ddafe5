package runtime

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// killedRunEnv, when set, makes the test binary the process that TestReapStale-
// RemovesCgroupsOfAKilledRunc kills: it runs one container (killedRun) and is
// SIGKILLed while runc creates it.
const killedRunEnv = "SLIMBUILD_TEST_KILLED_RUN"

type killedRun struct {
	State, Bundle, Rootfs, ID, Ready string
}

func TestMain(m *testing.M) {
	if v := os.Getenv(killedRunEnv); v != "" {
		runToBeKilled(v)
		os.Exit(3) // not reached: the test kills this process
	}
	os.Exit(m.Run())
}

// runToBeKilled runs the container that v describes, with a createRuntime hook
// that writes its pid to the Ready file and then waits: runc has made the
// container's cgroups by then, and not yet written its state.
func runToBeKilled(v string) {
	var k killedRun
	if err := json.Unmarshal([]byte(v), &k); err != nil {
		panic(err)
	}
	spec, err := Spec(k.Rootfs, Process{Args: []string{"sh", "-c", "exit 0"}, Env: []string{"PATH=/bin"}, Network: NetworkNone})
	if err != nil {
		panic(err)
	}
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
		Path: "/bin/sh", Args: []string{"sh", "-c", `echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec sleep 1000`, k.Ready},
	}}}
	r := &Runner{StateDir: k.State}
	_, err = r.Run(context.Background(), k.ID, k.Bundle, spec, Stdio{})
	panic(err)
}

// cgroupsNamed walks every cgroup hierarchy under /sys/fs/cgroup for
// directories named id (independently of the marker code).
func cgroupsNamed(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == id {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// waitFor polls cond until it holds; a generous bound only keeps a broken run
// from hanging (no timing is asserted).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestReapStaleRemovesCgroupsOfAKilledRunc: a slimbuild killed while runc
// creates a container (after runc made its cgroups, before it wrote its state)
// leaves cgroups that the watchdog's `runc delete --force` does not remove and
// no state names. The next reclaim (ReapStale on the state dir) must remove
// every one of them, in every hierarchy.
func TestReapStaleRemovesCgroupsOfAKilledRunc(t *testing.T) {
	requireRunc(t)
	k := killedRun{
		State: filepath.Join(t.TempDir(), StateDirName), Bundle: t.TempDir(),
		Rootfs: busyboxRoot(t), ID: NewContainerID(), Ready: filepath.Join(t.TempDir(), "hook-pid"),
	}
	env, _ := json.Marshal(k)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killedRunEnv+"="+string(env))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		// Whatever the test's outcome, take the container down.
		ReapStale(context.Background(), k.State)
		for _, d := range cgroupsNamed(t, k.ID) {
			syscall.Rmdir(d)
		}
	})
	var hook int
	waitFor(t, "runc's createRuntime hook", func() bool {
		b, err := os.ReadFile(k.Ready)
		hook, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(hook, syscall.SIGKILL) })
	if len(cgroupsNamed(t, k.ID)) == 0 {
		t.Fatalf("runc made no cgroup named %s before its hook ran", k.ID)
	}

	cmd.Process.Kill()
	<-exited
	// The watchdog runs `runc delete --force`, which removes the state directory
	// that holds no state.json, and leaves the cgroups.
	waitFor(t, "the watchdog to delete the container", func() bool {
		_, err := os.Lstat(filepath.Join(k.State, k.ID))
		return err != nil
	})
	left := cgroupsNamed(t, k.ID)
	if len(left) == 0 {
		t.Fatal("the kill left no cgroup: the leak was not reproduced")
	}
	t.Logf("the killed run left %d cgroups, e.g. %s", len(left), left[0])

	if got := StaleIDs(k.State); !cmp.Equal(got, []string{k.ID}) {
		t.Errorf("StaleIDs = %v, want [%s]", got, k.ID)
	}
	if err := ReapStale(context.Background(), k.State); err != nil {
		t.Fatal(err)
	}
	if left := cgroupsNamed(t, k.ID); len(left) > 0 {
		t.Errorf("the reclaim left the killed run's cgroups: %v", left)
	}
	if ids := StaleIDs(k.State); len(ids) > 0 {
		t.Errorf("after the reclaim, StaleIDs = %v", ids)
	}
}

// TestRunRemovesItsMarker: a container run to the end leaves no marker.
func TestRunRemovesItsMarker(t *testing.T) {
	requireRunc(t)
	rootfs := busyboxRoot(t)
	state := filepath.Join(t.TempDir(), StateDirName)
	r := &Runner{StateDir: state}
	id := NewContainerID()
	spec := mustSpec(t, rootfs, Process{Args: []string{"sh", "-c", "exit 0"}, Env: []string{"PATH=/bin"}, Network: NetworkNone})
	if status, err := r.Run(context.Background(), id, t.TempDir(), spec, Stdio{}); err != nil || status != 0 {
		t.Fatalf("run: status %d, %v", status, err)
	}
	if ids := StaleIDs(state); len(ids) > 0 {
		t.Errorf("a finished run left %v", ids)
	}
	if left := cgroupsNamed(t, id); len(left) > 0 {
		t.Errorf("a finished run left cgroups %v", left)
	}
}

func TestCgroupDirs(t *testing.T) {
	const mountinfo = `25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 33 0:32 / /mnt/memory\040again rw - cgroup cgroup rw,memory
39 33 0:33 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
40 33 0:34 / /sys/fs/cgroup/freezer\040x rw - cgroup cgroup rw,freezer`
	mounts, err := cgroupMounts(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cgroup string
		want         []string
	}{
		{"hybrid", "0::/user.slice\n1:name=systemd:/user.slice\n2:cpu,cpuacct:/\n3:memory:/process_api/e8\n",
			[]string{"/sys/fs/cgroup/unified/user.slice", "/sys/fs/cgroup/systemd/user.slice", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory/process_api/e8"}},
		{"mount root is a sub-cgroup", "4:pids:/docker/abc/build\n", []string{"/sys/fs/cgroup/pids/build"}},
		{"outside the mount's root", "4:pids:/other\n", nil},
		{"escaped mount point", "5:freezer:/a\n", []string{"/sys/fs/cgroup/freezer x/a"}},
		{"hierarchy not mounted", "6:blkio:/\n", nil},
		{"garbage", "x\n7:cpu\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, cgroupDirs(tc.cgroup, mounts)); diff != "" {
				t.Errorf("cgroupDirs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMarkedCgroups: a marker's lines count only as clean absolute paths of a
// cgroup named after its container; StaleIDs lists markers and state dirs alike.
func TestMarkedCgroups(t *testing.T) {
	state := filepath.Join(t.TempDir(), StateDirName)
	id := "slimbuild-0123456789abcdef"
	if err := os.MkdirAll(filepath.Join(state, "slimbuild-00000000aaaaaaaa"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(MarkerDir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	marker := strings.Join([]string{
		"/sys/fs/cgroup/cpu/" + id,
		"/sys/fs/cgroup/cpu/../../../etc/" + id,
		"relative/" + id,
		"/sys/fs/cgroup/cpu/slimbuild-other",
		"/sys/fs/cgroup/cpu//" + id,
		"/sys/fs/cgroup/memory/process_api/x/" + id,
	}, "\n")
	os.WriteFile(filepath.Join(MarkerDir(state), id), []byte(marker), 0o600)
	os.WriteFile(filepath.Join(MarkerDir(state), ".tmp-123"), nil, 0o600)
	want := []string{"/sys/fs/cgroup/cpu/" + id, "/sys/fs/cgroup/memory/process_api/x/" + id}
	if diff := cmp.Diff(want, markedCgroups(state, id)); diff != "" {
		t.Errorf("markedCgroups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"slimbuild-00000000aaaaaaaa", id}, StaleIDs(state)); diff != "" {
		t.Errorf("StaleIDs (-want +got):\n%s", diff)
	}
	if ids := StaleIDs(filepath.Join(t.TempDir(), "missing")); len(ids) > 0 {
		t.Errorf("StaleIDs of a missing dir = %v", ids)
	}
}

// TestRemoveCgroupOnlyOnCgroupfs: a marker naming a directory elsewhere (not a
// cgroup filesystem) never has it removed.
func TestRemoveCgroupOnlyOnCgroupfs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "slimbuild-0123456789abcdef")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := removeCgroup(dir); err == nil {
		t.Error("removeCgroup removed a directory that is no cgroup")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the directory is gone: %v", err)
	}
	if err := removeCgroup(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing cgroup: %v", err)
	}
}
