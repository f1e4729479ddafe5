package engine_test

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/source"
)

// TestAddGit adds a loopback repository at a tag with a subdir, at its default
// branch, at a branch with --keep-git-dir, and with a good --checksum; the
// context's .dockerignore does not filter it.
func TestAddGit(t *testing.T) {
	st := newStore(t)
	gs := newGitServer(t)
	repo := newTestRepo(t, gs, "app")
	v1 := repo.rev(t, "v1^{commit}")
	files := map[string]string{"Dockerfile": fmt.Sprintf(`FROM busybox
ADD %[1]s#v1:sub /opt/sub
ADD %[1]s /opt/def
ADD --keep-git-dir=true %[1]s#dev /opt/kept
ADD --checksum=%[2]s --chown=1000:1000 %[1]s#v1 /opt/sum
`, repo.url, v1),
		// The context's .dockerignore is the context's: a repository is not filtered by it.
		".dockerignore": "**/README\n**/file.txt\n"}
	fs := fsOf(t, mustBuild(t, st, files, engine.Options{Network: "none"}).Image)

	for p, want := range map[string]string{
		"opt/sub/dir/file.txt": "file v1\n",
		"opt/def/README":       "readme v2\n",
		"opt/kept/dev.txt":     "on dev\n",
		"opt/sum/README":       "readme v1\n",
	} {
		if got := fileData(t, fs, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if e := fs["opt/sub/link"]; e.Type != tar.TypeSymlink || e.Link != "dir/file.txt" {
		t.Errorf("opt/sub/link = %+v, want a symlink to dir/file.txt", e)
	}
	if e := fs["opt/sub/etc"]; e.Type != tar.TypeSymlink || e.Link != "/etc" {
		t.Errorf("opt/sub/etc = %+v, want the repository's link to /etc, copied as a link", e)
	}
	if e := fs["opt/sub/run.sh"]; e.Mode != 0o755 || e.UID != 0 || e.GID != 0 {
		t.Errorf("opt/sub/run.sh: mode %o owner %d:%d, want 0755 0:0", e.Mode, e.UID, e.GID)
	}
	if e := fs["opt/sub/dir/file.txt"]; e.Mode != 0o644 || e.UID != 0 {
		t.Errorf("opt/sub/dir/file.txt: mode %o uid %d, want 0644 0", e.Mode, e.UID)
	}
	if e := fs["opt/sum/README"]; e.UID != 1000 || e.GID != 1000 {
		t.Errorf("--chown: opt/sum/README owner %d:%d, want 1000:1000", e.UID, e.GID)
	}
	for p := range fs {
		if strings.HasPrefix(p, "opt/def/.git") || strings.HasPrefix(p, "opt/sub/.git") || strings.HasPrefix(p, "opt/sum/.git") {
			t.Errorf("%s: .git kept without --keep-git-dir", p)
		}
	}
	if _, ok := fs["opt/kept/.git/HEAD"]; !ok {
		t.Error("--keep-git-dir: opt/kept/.git/HEAD missing")
	}
	if _, ok := fs["opt/kept/README"]; !ok {
		t.Error("opt/kept/README missing")
	}
}

// TestAddGitErrors: a missing ref, a wrong checksum, a subdir that climbs out
// or goes through a link, a ref read as an option, and COPY of a repository
// fail with an error naming the Dockerfile's line, and fetch nothing outside.
func TestAddGitErrors(t *testing.T) {
	st := newStore(t)
	gs := newGitServer(t)
	repo := newTestRepo(t, gs, "app")
	tests := []struct {
		name, add string
		want      []string
	}{
		{"missing ref", "ADD %s#nope /x", []string{"Dockerfile:2:", "repository does not contain ref nope"}},
		{"bad checksum", "ADD --checksum=0123456789abcdef %s#v1 /x", []string{"Dockerfile:2:", "expected checksum to match 0123456789abcdef"}},
		{"checksum not hex", "ADD --checksum=sha256:00 %s#v1 /x", []string{"Dockerfile:2:", "expected hex commit hash"}},
		{"subdir climbs", "ADD %s#v1:../../../etc /x", []string{"Dockerfile:2:", `invalid git subdir "../../../etc"`}},
		{"subdir query climbs", "ADD %s?ref=v1&subdir=../etc /x", []string{"Dockerfile:2:", `invalid git subdir "../etc"`}},
		{"subdir through a link", "ADD %s#v1:sub/etc /x", []string{"Dockerfile:2:", "contains non-directory"}},
		{"ref is an option", "ADD %s#--upload-pack=touch /x", []string{"Dockerfile:2:", "invalid git ref"}},
		{"COPY of a repository", "COPY %s#v1 /x", []string{"Dockerfile:2:", "source can't be a git ref for COPY"}},
		{"keep-git-dir conflict", "ADD --keep-git-dir=false %s?keep-git-dir=true /x", []string{"Dockerfile:2:", "inconsistent keep-git-dir configuration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": "FROM busybox\n" + fmt.Sprintf(tc.add, repo.url) + "\n"}
			err := buildErr(t, st, files, engine.Options{Network: "none"})
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat("/x"); err == nil {
		t.Error("something wrote /x on the host")
	}
}

// TestAddGitCache: a rebuild with the remote unchanged is a cache hit that
// fetches nothing (only ls-remote asks the server); a new commit is a miss.
func TestAddGitCache(t *testing.T) {
	st := newStore(t)
	gs := newGitServer(t)
	repo := newTestRepo(t, gs, "app")
	files := map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD %s#main /src\n", repo.url)}

	mustBuild(t, st, files, engine.Options{Network: "none"})
	if n := gs.fetchCount(); n != 1 {
		t.Fatalf("first build fetched %d times, want 1", n)
	}
	rec := &recorder{}
	mustBuild(t, st, files, engine.Options{Network: "none", Progress: rec.progress})
	if n := gs.fetchCount(); n != 1 {
		t.Errorf("unchanged remote: fetched again (%d fetches)", n)
	}
	for step, hit := range rec.fsSteps() {
		if hit != "hit" {
			t.Errorf("unchanged remote: step %s was a %s", step, hit)
		}
	}

	repo.commit(t, "readme v3\n")
	rec = &recorder{}
	res := mustBuild(t, st, files, engine.Options{Network: "none", Progress: rec.progress})
	if got := fileData(t, fsOf(t, res.Image), "src/README"); got != "readme v3\n" {
		t.Errorf("after a new commit: src/README = %q", got)
	}
	if n := gs.fetchCount(); n != 2 {
		t.Errorf("after a new commit: %d fetches, want 2", n)
	}
	if res.CachedSteps != 0 {
		t.Errorf("after a new commit: %d cached steps: %v", res.CachedSteps, rec.fsSteps())
	}
}

// TestGitContext builds a git URL context (URL#ref:subdir): the Dockerfile
// comes from the checkout, which is removed afterwards.
func TestGitContext(t *testing.T) {
	st := newStore(t)
	gs := newGitServer(t)
	repo := newTestRepo(t, gs, "app")
	dir, cleanup, err := source.FetchGitContext(context.Background(), st, repo.url+"#dev:ctx")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, filepath.Join(st.Root(), "tmp")+"/") {
		t.Errorf("context checked out at %s, not under the store's tmp/", dir)
	}
	res, err := buildIn(t, st, dir, engine.Options{Network: "none"})
	cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if got := fileData(t, fsOf(t, res.Image), "hello.txt"); got != "hello from git context\n" {
		t.Errorf("hello.txt = %q", got)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the checkout %s is still there after cleanup: %v", dir, err)
	}
	assertClean(t, st)

	if _, _, err := source.FetchGitContext(context.Background(), st, repo.url+"#nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing ref: %v", err)
	}
	assertClean(t, st)
}
