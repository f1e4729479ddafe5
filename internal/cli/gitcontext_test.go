package cli

import (
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildGitContext: `slimbuild build URL#ref:subdir` builds the checkout's
// subdir with its Dockerfile (and -f names a file in the repository), and the
// checkout is gone from the store's tmp/ afterwards.
func TestBuildGitContext(t *testing.T) {
	root := bases(t)
	srv := t.TempDir()
	work := t.TempDir()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	for name, data := range map[string]string{
		"app/Dockerfile":       "FROM busybox\nCOPY msg /msg\n",
		"app/Dockerfile.other": "FROM busybox\nCOPY msg /other\n",
		"app/msg":              "from the repository\n",
	} {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(work, "init", "-q")
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "one")
	git(work, "tag", "v1")
	git(srv, "clone", "-q", "--bare", work, filepath.Join(srv, "app.git"))
	hs := httptest.NewServer(&cgi.Handler{
		Path: "/usr/lib/git-core/git-http-backend",
		Env:  []string{"GIT_PROJECT_ROOT=" + srv, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + srv},
	})
	defer hs.Close()
	url := hs.URL + "/app.git#v1:app"

	iid := filepath.Join(t.TempDir(), "iid")
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "--iidfile", iid, "-t", "gitctx", url); err != nil {
		t.Fatalf("build %s: %v\n%s", url, err, stderr)
	}
	if b, err := os.ReadFile(iid); err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Errorf("iidfile: %q %v", b, err)
	}
	if _, stderr, err := slimbuild(t, root, "build", "--progress", "quiet", "-f", "Dockerfile.other", "-t", "gitctx:other", url); err != nil {
		t.Fatalf("build -f Dockerfile.other %s: %v\n%s", url, err, stderr)
	}
	for _, ref := range []string{"gitctx", "gitctx:other"} {
		out := filepath.Join(t.TempDir(), "img.tar")
		if _, stderr, err := slimbuild(t, root, "save", "-o", out, ref); err != nil {
			t.Fatalf("save %s: %v\n%s", ref, err, stderr)
		}
	}
	left, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the store's tmp/: %s", e.Name())
	}

	_, _, err = slimbuild(t, root, "build", "--progress", "quiet", hs.URL+"/app.git#nope")
	if err == nil || !strings.Contains(err.Error(), "repository does not contain ref nope") {
		t.Errorf("missing ref: %v", err)
	}
}
