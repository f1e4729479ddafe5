package engine_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// gitServer serves the bare repositories under root over git's smart HTTP
// protocol (git http-backend through net/http/cgi) on 127.0.0.1, and counts
// the fetches (upload-pack requests that ask for objects).
type gitServer struct {
	*httptest.Server
	root    string
	mu      sync.Mutex
	fetches int
}

// newGitServer starts a loopback git server; it is closed when the test ends.
func newGitServer(t testing.TB) *gitServer {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend: %v (install git)", err)
	}
	gs := &gitServer{root: t.TempDir()}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + gs.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + gs.root,
		},
	}
	gs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			plain := body
			if r.Header.Get("Content-Encoding") == "gzip" {
				if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
					plain, _ = io.ReadAll(zr)
				}
			}
			// Protocol v2 says "command=fetch"; v0 sends "want" lines.
			if bytes.Contains(plain, []byte("command=fetch")) || bytes.Contains(plain, []byte("want ")) {
				gs.mu.Lock()
				gs.fetches++
				gs.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(gs.Close)
	return gs
}

func (gs *gitServer) fetchCount() int {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.fetches
}

// testGit runs git for a test, without the machine's configuration.
func testGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// testRepo is a work tree pushed to a bare repository the server serves.
type testRepo struct {
	work, bare string
	url        string // http://127.0.0.1:PORT/NAME.git
}

// newTestRepo makes NAME.git on gs: on main, README and sub/ (a file, an
// executable, a link inside, a link to /etc) tagged v1 (annotated), then a
// second commit on main; branch dev has its own file and a context dir.
func newTestRepo(t testing.TB, gs *gitServer, name string) *testRepo {
	t.Helper()
	r := &testRepo{work: t.TempDir(), bare: filepath.Join(gs.root, name+".git"), url: gs.URL + "/" + name + ".git"}
	w := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(r.work, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	testGit(t, r.work, "init", "-q")
	w("README", "readme v1\n", 0o644)
	w("sub/dir/file.txt", "file v1\n", 0o644)
	w("sub/run.sh", "#!/bin/sh\necho hi\n", 0o755)
	if err := os.Symlink("dir/file.txt", filepath.Join(r.work, "sub/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(r.work, "sub/etc")); err != nil {
		t.Fatal(err)
	}
	testGit(t, r.work, "add", "-A")
	testGit(t, r.work, "commit", "-q", "-m", "one")
	testGit(t, r.work, "tag", "-a", "-m", "v1", "v1")
	testGit(t, r.work, "checkout", "-q", "-b", "dev")
	w("dev.txt", "on dev\n", 0o644)
	w("ctx/Dockerfile", "FROM busybox\nCOPY hello.txt /hello.txt\n", 0o644)
	w("ctx/hello.txt", "hello from git context\n", 0o644)
	testGit(t, r.work, "add", "-A")
	testGit(t, r.work, "commit", "-q", "-m", "dev")
	testGit(t, r.work, "checkout", "-q", "main")
	w("README", "readme v2\n", 0o644)
	testGit(t, r.work, "commit", "-q", "-a", "-m", "two")
	testGit(t, gs.root, "clone", "-q", "--bare", r.work, r.bare)
	return r
}

// commit adds a commit on main with README set to data and pushes it.
func (r *testRepo) commit(t testing.TB, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.work, "README"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	testGit(t, r.work, "commit", "-q", "-a", "-m", "more")
	testGit(t, r.work, "push", "-q", r.bare, "main")
}

// rev is the object name of rev in the work tree.
func (r *testRepo) rev(t testing.TB, rev string) string {
	t.Helper()
	return testGit(t, r.work, "rev-parse", rev)
}
