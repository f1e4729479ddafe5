package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNoNetHelper is returned for NetworkPrivate when neither pasta nor slirp4netns is installed.
var ErrNoNetHelper = errors.New(`the default network needs pasta or slirp4netns: install one ("apt-get install passt"), or choose --network none or host`)

// dnsForward is the address in a private namespace where pasta answers DNS by forwarding
// queries to the host's resolver.
const dnsForward = "169.254.1.53"

// helperTimeout bounds how long a network helper may take to configure a namespace.
const helperTimeout = 30 * time.Second

// netHelper is a user-mode network stack that connects a namespace to the outside
// through the host's sockets.
type netHelper struct {
	name   string
	resolv string // resolv.conf for the container
	// prepare sets cmd up for the namespace bound at nsPath (scratch is a path it may
	// use) and returns ready, which the caller runs once cmd has started: it returns
	// when the namespace is configured, or with an error once exited is closed.
	prepare func(cmd *exec.Cmd, nsPath, scratch string) (ready func(exited <-chan struct{}) error, err error)
}

var netHelpers = []netHelper{
	{name: "pasta", resolv: "nameserver " + dnsForward + "\n", prepare: preparePasta},
	{name: "slirp4netns", resolv: "nameserver 10.0.2.3\n", prepare: prepareSlirp},
}

// PrivateHelper names the helper that NetworkPrivate uses on this machine.
func PrivateHelper() (string, error) {
	h, _, err := findHelper()
	if err != nil {
		return "", err
	}
	return h.name, nil
}

func findHelper() (netHelper, string, error) {
	for _, h := range netHelpers {
		if p, err := exec.LookPath(h.name); err == nil {
			return h, p, nil
		}
	}
	return netHelper{}, "", ErrNoNetHelper
}

// NetNS is a container's network namespace and, for NetworkPrivate, the helper
// process that connects it. Close releases both.
type NetNS struct {
	// Path is the bound namespace to join ("" for the host's).
	Path string
	// Helper names the program connecting it ("" when none does).
	Helper string
	// ResolvConf is the resolv.conf the container gets.
	ResolvConf []byte

	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has been waited for
	// ready waits for the helper to have configured the namespace (StartNetNS);
	// nil once it has (or when there is no helper), see Ready.
	ready     func() error
	readyErr  error
	readyOnce sync.Once
	settled   atomic.Bool // Ready has returned (readyErr is set)
	stopOnce  sync.Once
}

// NewNetNS makes the network for one container. For NetworkHost it makes nothing and
// gives the host's resolv.conf; otherwise it binds a fresh namespace with lo up at path
// (a file the caller names, in a private directory), and for NetworkPrivate starts
// pasta (or slirp4netns) on it, killed with SIGKILL if this process dies, and waits
// until the helper has configured the namespace.
func NewNetNS(n Network, path string) (*NetNS, error) {
	ns, err := StartNetNS(n, path)
	if err != nil {
		return nil, err
	}
	if err := ns.Ready(); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// StartNetNS is NewNetNS without the wait: the namespace is bound at path when it
// returns, but a NetworkPrivate helper may still be configuring it (pasta takes
// about 150 ms to start), so a caller can do other work meanwhile. No process may
// run in the namespace before Ready has returned nil.
func StartNetNS(n Network, path string) (*NetNS, error) {
	switch n {
	case NetworkHost:
		resolv, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading host resolv.conf: %w", err)
		}
		return &NetNS{ResolvConf: resolv}, nil
	case NetworkNone:
		if err := NewLoopbackNetNS(path); err != nil {
			return nil, err
		}
		return &NetNS{Path: path, ResolvConf: []byte("nameserver 127.0.0.1\n")}, nil
	case NetworkPrivate:
	default:
		return nil, fmt.Errorf("unsupported network %q", string(n))
	}
	h, bin, err := findHelper()
	if err != nil {
		return nil, err
	}
	if err := NewLoopbackNetNS(path); err != nil {
		return nil, err
	}
	ns := &NetNS{Path: path, Helper: h.name, ResolvConf: []byte(h.resolv), done: make(chan struct{})}
	fail := func(err error) (*NetNS, error) {
		RemoveNetNS(path)
		return nil, fmt.Errorf("private network (%s): %w", h.name, err)
	}
	cmd := exec.Command(bin)
	// Setpgid keeps a terminal's Ctrl-C away from the helper: the build stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	scratch := path + ".helper"
	ready, err := h.prepare(cmd, path, scratch)
	if err != nil {
		os.Remove(scratch)
		return fail(err)
	}
	// The parent-death signal follows the thread that forks the helper, and Go ends
	// threads (those a goroutine locked and never unlocked, as NewLoopbackNetNS does).
	// This goroutine holds its thread for the helper's whole life, so only this
	// process's death counts.
	started := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(ns.done)
	}()
	if err := <-started; err != nil {
		ready(nil)
		os.Remove(scratch)
		return fail(err)
	}
	ns.cmd = cmd
	ns.ready = func() error {
		defer os.Remove(scratch)
		if err := ready(ns.done); err != nil {
			ns.stop()
			if msg := strings.TrimSpace(out.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return fmt.Errorf("private network (%s): %w", h.name, err)
		}
		return nil
	}
	return ns, nil
}

// Ready waits until the namespace is configured and reports whether it is; the
// same answer every time. After an error the helper is stopped; Close still
// releases the namespace.
func (ns *NetNS) Ready() error {
	ns.readyOnce.Do(func() {
		if ns.ready != nil {
			ns.readyErr = ns.ready()
		}
		ns.settled.Store(true)
	})
	return ns.readyErr
}

// isReady reports whether the namespace is known to be configured: it has no
// helper, or Ready has returned nil.
func (ns *NetNS) isReady() bool {
	return ns.ready == nil || (ns.settled.Load() && ns.readyErr == nil)
}

// failed reports whether Ready has returned an error.
func (ns *NetNS) failed() bool { return ns.settled.Load() && ns.readyErr != nil }

// helperAlive reports whether the helper still runs (true when there is none).
func (ns *NetNS) helperAlive() bool {
	if ns.done == nil {
		return true
	}
	select {
	case <-ns.done:
		return false
	default:
		return true
	}
}

// kill sends the helper SIGKILL; safe from several goroutines. The goroutine that
// started it reaps it (and closes done): a killed pasta takes ~30 ms to tear its
// memory down, which the caller need not wait for.
func (ns *NetNS) kill() {
	ns.stopOnce.Do(func() {
		if ns.cmd != nil {
			ns.cmd.Process.Kill()
		}
	})
}

// stop kills the helper and waits until it is reaped.
func (ns *NetNS) stop() {
	ns.kill()
	if ns.cmd != nil {
		<-ns.done
	}
}

// Close kills the helper and releases the namespace; the helper is reaped in the
// background. Safe to call twice.
func (ns *NetNS) Close() error {
	if ns == nil {
		return nil
	}
	ns.kill()
	// A readiness check not yet made returns at once now that the helper is gone,
	// and releases what it holds.
	_ = ns.Ready()
	if ns.Path != "" {
		if err := RemoveNetNS(ns.Path); err != nil {
			return err
		}
		ns.Path = ""
	}
	return nil
}

// preparePasta runs pasta in the foreground on the namespace, with no port forwarded in
// either direction and the gateway not mapped to the host, so the namespace reaches
// the outside but none of the host's own services. pasta writes its pid file once the
// namespace is configured: that is the signal to go on.
func preparePasta(cmd *exec.Cmd, nsPath, pidFile string) (func(<-chan struct{}) error, error) {
	cmd.Args = []string{cmd.Args[0],
		"--config-net", "--netns", nsPath, "--runas", "0:0",
		"-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw",
		"--dns-forward", dnsForward,
		"-f", "-q", "-P", pidFile,
	}
	return pidFileReady(cmd, pidFile), nil
}

// pidFileReady waits until cmd has written its pid to pidFile, or exited.
func pidFileReady(cmd *exec.Cmd, pidFile string) func(<-chan struct{}) error {
	return func(exited <-chan struct{}) error {
		if exited == nil {
			return nil
		}
		want := strconv.Itoa(cmd.Process.Pid)
		deadline := time.Now().Add(helperTimeout)
		for {
			if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == want {
				return nil
			}
			select {
			case <-exited:
				return fmt.Errorf("exited before the namespace was ready (%v)", cmd.ProcessState)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("namespace not ready after %v", helperTimeout)
			}
		}
	}
}

// prepareSlirp runs slirp4netns on the namespace with the host's loopback out of reach;
// it reports readiness on a pipe.
func prepareSlirp(cmd *exec.Cmd, nsPath, _ string) (func(<-chan struct{}) error, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Args = []string{cmd.Args[0],
		"--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3",
		"--netns-type=path", nsPath, "tap0",
	}
	return func(exited <-chan struct{}) error {
		w.Close()
		defer r.Close()
		if exited == nil {
			return nil
		}
		ready := make(chan error, 1)
		go func() {
			b := make([]byte, 1)
			_, err := r.Read(b)
			ready <- err
		}()
		select {
		case err := <-ready:
			if err != nil {
				return fmt.Errorf("exited before the namespace was ready: %w", err)
			}
			return nil
		case <-time.After(helperTimeout):
			return fmt.Errorf("namespace not ready after %v", helperTimeout)
		}
	}, nil
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 4096 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Describe says in a few words what n gives a container on this machine, for a
// progress line such as "network: private (pasta, outbound only)".
func Describe(n Network) string {
	switch n {
	case NetworkHost:
		return "host (the host's network namespace)"
	case NetworkNone:
		return "none (loopback only)"
	}
	h, err := PrivateHelper()
	if err != nil {
		return "private (unavailable: no pasta or slirp4netns installed)"
	}
	return "private (" + h + ", outbound only)"
}
