package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKilledBuildLeavesNoContainer is SIGKILL on the real binary while a RUN runs on
// the default network: nothing of it keeps running (no container, no runc, no
// network helper), and the next command leaves no runc state or temporary dir.
func TestKilledBuildLeavesNoContainer(t *testing.T) {
	root := tinyBase(t)
	// A duration no other process sleeps names the container's process.
	marker := "sleep\x00" + strconv.Itoa(100000+os.Getpid())
	cmd := startedBuild(t, root, "FROM busybox\nRUN echo started; exec busybox sleep "+strconv.Itoa(100000+os.Getpid())+"\n")
	// "started" is printed just before the shell execs the sleep: wait for it.
	for wait := time.Now().Add(20 * time.Second); len(matching(marker)) == 0 && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	children := descendants(cmd.Process.Pid)
	if len(children) == 0 || len(matching(marker)) == 0 {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		t.Fatalf("the RUN's process is not running (slimbuild's children: %v)", children)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The container goes with slimbuild: wait for it, without a timed assertion
	// beyond a generous bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := matching(marker)
		for _, pid := range children {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the killed build still run: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next command reclaims the rest.
	if _, _, err := slimbuild(t, root, "images"); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) > 0 {
		t.Errorf("temporary directories left: %v", left)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), root) {
		t.Errorf("mounts left under %s", root)
	}
}

// descendants lists the processes below pid (children, their children, ...).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 0; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// matching lists running processes whose command line contains s.
func matching(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), s) && alive(p) {
			out = append(out, p)
		}
	}
	return out
}
