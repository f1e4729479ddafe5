package cli

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptDuringRun is Ctrl-C on the real binary: the running container is
// killed, the overlay unmounted, temporary directories removed, and the exit
// status is non-zero.
func TestInterruptDuringRun(t *testing.T) {
	root := tinyBase(t)
	cmd := startedBuild(t, root, "FROM busybox\nRUN echo started; busybox sleep 30\n")
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("slimbuild did not stop within 20 s of SIGINT")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("exit after SIGINT: %v, want status 130", err)
	}
	t.Logf("stopped %v after SIGINT", time.Since(sent).Round(time.Millisecond))

	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), root) {
		t.Errorf("mounts left under %s:\n%s", root, mounts)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) > 0 {
		t.Errorf("temporary directories left: %v", left)
	}
	if out, _ := exec.Command("pgrep", "-f", "busybox sleep 30").Output(); len(out) > 0 {
		t.Errorf("the container's process survived: pids %s", out)
	}
}

// startedBuild builds the real binary, starts `build --progress plain` of a
// Dockerfile whose RUN prints "started" first, and returns once that line is
// out (the container runs); the rest of stderr is drained.
func startedBuild(t *testing.T, root, dockerfile string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slimbuild")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/slimbuild").CombinedOutput(); err != nil {
		t.Fatalf("building slimbuild: %v\n%s", err, out)
	}
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--root", root, "build", "--progress", "plain", ctx)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	started := false
	for sc.Scan() {
		if strings.HasSuffix(sc.Text(), " started") {
			started = true
			break
		}
	}
	if !started {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the RUN step never printed its output")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return cmd
}
