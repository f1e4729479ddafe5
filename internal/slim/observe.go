package slim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxObserved bounds how many distinct paths one probe may report: a
// hostile program opening files in a loop cannot grow memory without end.
const maxObserved = 1 << 16

// Probe is one way of exercising an image: run it with Args after the
// entrypoint (the image's CMD when empty), or, when HTTPPort is set, start
// it as it is, wait for the port in its network namespace, send one GET for
// HTTPPath and stop it.
type Probe struct {
	Args     []string `json:"args,omitempty"`
	HTTPPort int      `json:"http_port,omitempty"`
	HTTPPath string   `json:"http_path,omitempty"`
}

func (p Probe) String() string {
	if p.HTTPPort != 0 {
		return fmt.Sprintf("GET :%d%s", p.HTTPPort, p.HTTPPath)
	}
	if len(p.Args) == 0 {
		return "entrypoint with CMD"
	}
	return strings.Join(p.Args, " ")
}

// ParseHTTPProbe reads PORT[/PATH].
func ParseHTTPProbe(s string) (Probe, error) {
	port, p, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Probe{}, fmt.Errorf("http probe %q: want PORT[/PATH] with a port from 1 to 65535", s)
	}
	return Probe{HTTPPort: n, HTTPPath: "/" + p}, nil
}

// fileWatch collects the paths opened on one filesystem through fanotify,
// marked from the host side: nothing runs inside the container.
type fileWatch struct {
	fd    int
	root  string // the host path of the watched root, stripped from what is seen
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	paths map[string]bool
	full  bool
	err   error
}

// watchFilesystem starts watching every open and exec on the filesystem
// mounted at root (FAN_MARK_FILESYSTEM: every mount of it, including the
// container's own bind mount of its root).
func watchFilesystem(root string) (*fileWatch, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify: %w", err)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN|unix.FAN_OPEN_EXEC, unix.AT_FDCWD, root); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fanotify marking %s: %w", root, err)
	}
	fw := &fileWatch{fd: fd, root: root, stop: make(chan struct{}), done: make(chan struct{}), paths: map[string]bool{}}
	go fw.loop()
	return fw, nil
}

func (fw *fileWatch) loop() {
	defer close(fw.done)
	buf := make([]byte, 64<<10)
	stopping := false
	for {
		n, err := unix.Read(fw.fd, buf)
		if err == unix.EAGAIN || n == 0 {
			if stopping {
				return // drained
			}
			pfd := []unix.PollFd{{Fd: int32(fw.fd), Events: unix.POLLIN}}
			select {
			case <-fw.stop:
				stopping = true
				continue
			default:
			}
			_, _ = unix.Poll(pfd, 50)
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fw.err = fmt.Errorf("reading fanotify events: %w", err)
			return
		}
		fw.parse(buf[:n])
	}
}

// parse handles a buffer of events: each fd is resolved to its path and closed.
func (fw *fileWatch) parse(b []byte) {
	const metaSize = int(unsafe.Sizeof(unix.FanotifyEventMetadata{}))
	for len(b) >= metaSize {
		m := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&b[0]))
		if m.Event_len < uint32(metaSize) || int(m.Event_len) > len(b) {
			return
		}
		if m.Fd >= 0 {
			p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(m.Fd)))
			unix.Close(int(m.Fd))
			if err == nil {
				fw.note(p)
			}
		}
		b = b[m.Event_len:]
	}
}

// note records a path seen, mapped into the image: the watched root's host
// path is stripped; a path outside it is one the kernel rendered from inside
// the container's mount namespace, already an image path.
func (fw *fileWatch) note(p string) {
	if strings.HasSuffix(p, " (deleted)") || !path.IsAbs(p) {
		return
	}
	if rest, ok := strings.CutPrefix(p, fw.root+"/"); ok {
		p = "/" + rest
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(fw.paths) >= maxObserved {
		fw.full = true
		return
	}
	fw.paths[path.Clean(p)] = true
}

// Stop ends the watch and returns the paths seen.
func (fw *fileWatch) Stop() (map[string]bool, error) {
	close(fw.stop)
	<-fw.done
	unix.Close(fw.fd)
	if fw.err != nil {
		return nil, fw.err
	}
	if fw.full {
		return nil, fmt.Errorf("the probe opened more than %d distinct files", maxObserved)
	}
	return fw.paths, nil
}

// maxBody bounds how much of an HTTP probe's response is read.
const maxBody = 16 << 20

// httpProbe waits until the port answers in the network namespace netns (a
// file), sends one GET and returns the status code and body. It gives up
// when exited is closed (the server stopped) or at deadline.
func httpProbe(netns string, p Probe, exited <-chan struct{}, deadline time.Time) (int, []byte, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.HTTPPort))
	for {
		conn, err := dialIn(netns, addr)
		if err == nil {
			defer conn.Close()
			_ = conn.SetDeadline(deadline)
			req := fmt.Sprintf("GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n", p.HTTPPath)
			if _, err := conn.Write([]byte(req)); err != nil {
				return 0, nil, fmt.Errorf("sending %s: %w", p, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return 0, nil, fmt.Errorf("reading the answer to %s: %w", p, err)
			}
			defer resp.Body.Close()
			body, err := readAtMost(resp.Body, maxBody)
			if err != nil {
				return 0, nil, fmt.Errorf("reading the answer to %s: %w", p, err)
			}
			return resp.StatusCode, body, nil
		}
		select {
		case <-exited:
			return 0, nil, fmt.Errorf("%s: the server exited before it listened", p)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("%s: nothing listened: %w", p, ErrVerifyTimeout)
		}
	}
}

func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response over %d bytes", limit)
	}
	return b, nil
}

// dialIn connects to addr from inside the network namespace at nsPath. The
// goroutine's thread enters the namespace and is never handed back to the
// scheduler (it ends with the goroutine); the socket stays in the namespace.
func dialIn(nsPath, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread is discarded
		f, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("entering network namespace %s: %w", nsPath, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
