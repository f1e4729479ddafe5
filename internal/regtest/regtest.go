// Package regtest runs registries for tests: the real CNCF distribution registry
// (Debian's docker-registry), optionally with htpasswd basic auth, and proxies in
// front of a registry that count the bytes served or fail and stall requests.
// Everything listens on 127.0.0.1 and is stopped when the test ends.
package regtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options configure Start.
type Options struct {
	// Users, when set, turns on htpasswd basic auth with these user -> password pairs.
	Users map[string]string
}

// Start runs docker-registry on 127.0.0.1 with a fresh storage directory and
// returns its "127.0.0.1:PORT". The test fails when docker-registry is missing
// (apt-get install docker-registry). The process is stopped by its PID at cleanup.
func Start(t testing.TB, o Options) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry is not installed (apt-get install docker-registry): %v", err)
	}
	dir := t.TempDir()
	auth := ""
	if len(o.Users) > 0 {
		var lines []string
		for u, p := range o.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, u+":"+string(h))
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: slimbuild-test\n    path: %s\n", pw)
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), host, auth)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfgPath)
		logf, err := os.Create(filepath.Join(dir, "registry.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting docker-registry: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			logf.Close()
		}
		if ready(host, exited) {
			t.Cleanup(stop)
			return host
		}
		stop()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
	t.Fatalf("docker-registry did not start:\n%s", log)
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ready waits for the registry's /v2/ to answer (200, or 401 with auth on).
func ready(host string, exited <-chan struct{}) bool {
	for i := 0; i < 200; i++ {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Proxy is a reverse proxy in front of a registry.
type Proxy struct {
	// Host is the proxy's "127.0.0.1:PORT": use it as the registry host.
	Host string

	served   atomic.Int64
	requests atomic.Int64
	failed   atomic.Int64
	stalled  atomic.Int64
}

// Served is how many response body bytes the proxy has sent.
func (p *Proxy) Served() int64 { return p.served.Load() }

// Requests is how many requests the proxy has received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Failed and Stalled count the requests the proxy broke on purpose.
func (p *Proxy) Failed() int64  { return p.failed.Load() }
func (p *Proxy) Stalled() int64 { return p.stalled.Load() }

// ResetCount sets Served and Requests back to zero.
func (p *Proxy) ResetCount() { p.served.Store(0); p.requests.Store(0) }

// Flaky makes a proxy misbehave.
type Flaky struct {
	// FailEvery answers every FailEvery-th request with 503 without passing it on (0: never).
	FailEvery int64
	// StallRequest holds the StallRequest-th request (1-based; 0: none) for StallFor
	// before passing it on, so that a client with a shorter timeout gives up on it.
	StallRequest int64
	StallFor     time.Duration
}

// NewProxy starts a proxy to the registry at target that counts what it serves
// and misbehaves as f says.
func NewProxy(t testing.TB, target string, f Flaky) *Proxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	p := &Proxy{}
	done := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		if f.FailEvery > 0 && n%f.FailEvery == 0 {
			p.failed.Add(1)
			io.Copy(io.Discard, r.Body)
			http.Error(w, "flaky proxy: try again", http.StatusServiceUnavailable)
			return
		}
		if f.StallRequest > 0 && n == f.StallRequest {
			p.stalled.Add(1)
			select {
			case <-time.After(f.StallFor):
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
		rp.ServeHTTP(&countingWriter{ResponseWriter: w, n: &p.served}, r)
	}))
	t.Cleanup(func() {
		once.Do(func() { close(done) })
		srv.Close()
	})
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ErrNoSkopeo is returned by Skopeo when skopeo is not installed.
var ErrNoSkopeo = errors.New("skopeo is not installed (apt-get install skopeo)")

// SkopeoDigest asks skopeo for the digest of ref (a docker:// reference without
// the scheme) on a plain-http registry.
func SkopeoDigest(ref string) (string, error) {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		return "", ErrNoSkopeo
	}
	out, err := exec.Command(bin, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
