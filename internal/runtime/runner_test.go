package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runc "github.com/containerd/go-runc"
)

// requireRunc skips unless the machine can run containers.
func requireRunc(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	path, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (apt-get install runc)")
	}
	return path
}

// busyboxRoot returns a rootfs holding /bin/busybox with applet links, and /work.
func busyboxRoot(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no /bin/busybox (apt-get install busybox-static): %v", err)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "work", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "id", "cat", "sleep", "echo", "pwd", "ls"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var containerSeq atomic.Int64

// newRunner returns a Runner with its own state dir and a check, at cleanup, that runc's
// state is empty; it deletes whatever it finds so nothing outlives the test.
func newRunner(t *testing.T) *Runner {
	t.Helper()
	path := requireRunc(t)
	r := &Runner{StateDir: t.TempDir()}
	t.Cleanup(func() {
		ctl := &runc.Runc{Command: path, Root: r.StateDir}
		list, err := ctl.List(context.Background())
		if err != nil {
			t.Errorf("runc list: %v", err)
		}
		for _, c := range list {
			t.Errorf("container %q left in runc state (%s)", c.ID, c.Status)
			_ = ctl.Delete(context.Background(), c.ID, &runc.DeleteOpts{Force: true})
		}
	})
	return r
}

func newID(t *testing.T) string {
	return fmt.Sprintf("slimbuild-test-%d-%d", os.Getpid(), containerSeq.Add(1))
}

type result struct {
	status         int
	stdout, stderr string
}

func run(t *testing.T, ctx context.Context, r *Runner, rootfs string, p Process) (result, error) {
	t.Helper()
	if p.Env == nil {
		p.Env = []string{"PATH=/bin"}
	}
	var stdout, stderr bytes.Buffer
	status, err := r.Run(ctx, newID(t), t.TempDir(), mustSpec(t, rootfs, p), Stdio{Stdout: &stdout, Stderr: &stderr})
	return result{status, stdout.String(), stderr.String()}, err
}

func TestRun(t *testing.T) {
	r := newRunner(t)
	rootfs := busyboxRoot(t)
	tests := []struct {
		name string
		p    Process
		want result
	}{
		{
			name: "exit status and output",
			p:    Process{Args: []string{"sh", "-c", "echo hi; echo oops >&2; exit 3"}, Network: "none"},
			want: result{status: 3, stdout: "hi\n", stderr: "oops\n"},
		},
		{
			name: "env and cwd",
			p: Process{
				Args: []string{"sh", "-c", `echo "$FOO"; pwd`}, Env: []string{"PATH=/bin", "FOO=bar baz"},
				Cwd: "/work", Network: "none",
			},
			want: result{stdout: "bar baz\n/work\n"},
		},
		{
			name: "user and groups",
			p:    Process{Args: []string{"id"}, UID: 1000, GID: 1000, AddGIDs: []uint32{27}, Network: "none"},
			want: result{stdout: "uid=1000 gid=1000 groups=27\n"},
		},
		{
			name: "root",
			p:    Process{Args: []string{"id"}, Network: "none"},
			want: result{stdout: "uid=0 gid=0\n"},
		},
		{
			name: "hostname",
			p:    Process{Args: []string{"cat", "/proc/sys/kernel/hostname"}, Hostname: "slim", Network: "none"},
			want: result{stdout: "slim\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, context.Background(), r, rootfs, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpResult(tt.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func cmpResult(want, got result) string {
	if want != got {
		return fmt.Sprintf("got status %d stdout %q stderr %q, want status %d stdout %q stderr %q",
			got.status, got.stdout, got.stderr, want.status, want.stdout, want.stderr)
	}
	return ""
}

// interfaces lists the interface names of a /proc/net/dev listing.
func interfaces(procNetDev string) []string {
	var names []string
	for _, line := range strings.Split(procNetDev, "\n") {
		name, _, ok := strings.Cut(line, ":")
		if ok && !strings.Contains(name, "|") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	sort.Strings(names)
	return names
}

func TestRunNetwork(t *testing.T) {
	r := newRunner(t)
	rootfs := busyboxRoot(t)
	host, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		network Network
		want    []string
	}{
		{"none", []string{"lo"}},
		{"host", interfaces(string(host))},
	} {
		t.Run(tt.network.String(), func(t *testing.T) {
			got, err := run(t, context.Background(), r, rootfs, Process{Args: []string{"cat", "/proc/net/dev"}, Network: tt.network})
			if err != nil {
				t.Fatal(err)
			}
			if got.status != 0 {
				t.Fatalf("status %d: %s", got.status, got.stderr)
			}
			if g := interfaces(got.stdout); strings.Join(g, ",") != strings.Join(tt.want, ",") {
				t.Errorf("interfaces %v, want %v", g, tt.want)
			}
			// /sys is readable either way (sysfs, or the host's bound read-only).
			got, err = run(t, context.Background(), r, rootfs, Process{Args: []string{"ls", "/sys/class/net"}, Network: tt.network})
			if err != nil || got.status != 0 || !strings.Contains(got.stdout, "lo") {
				t.Errorf("ls /sys/class/net: err %v status %d out %q err %q", err, got.status, got.stdout, got.stderr)
			}
		})
	}
}

// notifyWriter records writes and closes first on the first one.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	first chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.once.Do(func() { close(w.first) })
	return w.buf.Write(p)
}

// TestRunCancel: output streams while the container runs, and cancelling ctx kills and
// deletes the container promptly.
func TestRunCancel(t *testing.T) {
	r := newRunner(t)
	rootfs := busyboxRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &notifyWriter{first: make(chan struct{})}
	type ret struct {
		status int
		err    error
	}
	done := make(chan ret, 1)
	spec := mustSpec(t, rootfs, Process{Args: []string{"sh", "-c", "echo started; exec sleep 100"}, Env: []string{"PATH=/bin"}, Network: "none"})
	go func() {
		status, err := r.Run(ctx, newID(t), t.TempDir(), spec, Stdio{Stdout: out, Stderr: io.Discard})
		done <- ret{status, err}
	}()
	select {
	case <-out.first: // streamed before the process ended
	case res := <-done:
		t.Fatalf("Run returned before cancel: %d %v", res.status, res.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no output from the container within 20s")
	}
	start := time.Now()
	cancel()
	select {
	case res := <-done:
		if !errors.Is(res.err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", res.err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Run returned %v after cancel, want within 2s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	entries, err := os.ReadDir(r.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("runc state dir holds %q", e.Name())
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	r := newRunner(t)
	rootfs := busyboxRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := run(t, ctx, r, rootfs, Process{Args: []string{"sleep", "100"}, Network: "none"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRunCancelRace(t *testing.T) {
	// Cancelling while runc is still creating the container must still kill it.
	r := newRunner(t)
	rootfs := busyboxRoot(t)
	for _, delay := range []time.Duration{1 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), delay)
		start := time.Now()
		_, err := run(t, ctx, r, rootfs, Process{Args: []string{"sleep", "100"}, Network: "none"})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("delay %v: err = %v, want deadline exceeded", delay, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("delay %v: took %v", delay, took)
		}
	}
}

func TestRunErrors(t *testing.T) {
	rootfs := busyboxRoot(t)
	t.Run("runc missing", func(t *testing.T) {
		r := &Runner{Runc: filepath.Join(t.TempDir(), "runc"), StateDir: t.TempDir()}
		_, err := r.Run(context.Background(), "x", t.TempDir(), mustSpec(t, rootfs, Process{Args: []string{"sh"}}), Stdio{})
		if !errors.Is(err, ErrRuncNotFound) || err.Error() != `runc not found: install it with "apt-get install runc"` {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("command missing is an error, not a status", func(t *testing.T) {
		r := newRunner(t)
		_, err := run(t, context.Background(), r, rootfs, Process{Args: []string{"/bin/nope"}, Network: "none"})
		if err == nil || !strings.Contains(err.Error(), "/bin/nope") {
			t.Errorf("err = %v, want it to name /bin/nope", err)
		}
	})
}
