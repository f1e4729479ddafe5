package source

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// TestParseGitSource: BuildKit's git URL forms are git sources, HTTP URLs
// without the .git suffix and local paths are not, and refs or subdirs that
// climb or read as options are refused.
func TestParseGitSource(t *testing.T) {
	yes := true
	tests := []struct {
		name, src string
		keep      *bool
		isGit     bool
		want      *GitSource
		err       string
	}{
		{name: "https ref and subdir", src: "https://host/org/repo.git#v1:sub/dir", isGit: true,
			want: &GitSource{remote: "https://host/org/repo.git", ref: "v1", subdir: "sub/dir", submodules: true}},
		{name: "https default branch", src: "https://host/repo.git", isGit: true,
			want: &GitSource{remote: "https://host/repo.git", submodules: true}},
		{name: "subdir only", src: "https://host/repo.git#:sub", isGit: true,
			want: &GitSource{remote: "https://host/repo.git", subdir: "sub", submodules: true}},
		{name: "ref only", src: "https://host/repo.git#main", isGit: true,
			want: &GitSource{remote: "https://host/repo.git", ref: "main", submodules: true}},
		{name: "scp-like", src: "git@github.com:org/repo.git#main", isGit: true,
			want: &GitSource{remote: "git@github.com:org/repo.git", ref: "main", submodules: true}},
		{name: "ssh", src: "ssh://git@host:2222/repo.git#dev:a", isGit: true,
			want: &GitSource{remote: "ssh://git@host:2222/repo.git", ref: "dev", subdir: "a", submodules: true}},
		{name: "git protocol without .git", src: "git://host/repo#x", isGit: true,
			want: &GitSource{remote: "git://host/repo", ref: "x", submodules: true}},
		{name: "query forms", src: "https://host/repo.git?tag=v1&subdir=s&keep-git-dir=true&submodules=false&mtime=commit", isGit: true,
			want: &GitSource{remote: "https://host/repo.git", ref: "refs/tags/v1", subdir: "s", keepGitDir: true, mtimeCommit: true}},
		{name: "--keep-git-dir", src: "https://host/repo.git", keep: &yes, isGit: true,
			want: &GitSource{remote: "https://host/repo.git", keepGitDir: true, submodules: true}},
		{name: "checksum in query", src: "https://host/repo.git?checksum=abc123", isGit: true,
			want: &GitSource{remote: "https://host/repo.git", checksum: "abc123", submodules: true}},

		{name: "http file", src: "https://host/file.tar.gz", isGit: false},
		{name: "http without .git", src: "https://host/org/repo", isGit: false},
		{name: "local path", src: "src/app", isGit: false},
		{name: "relative path", src: "./repo.git", isGit: false},
		{name: "deprecated github.com form", src: "github.com/org/repo", isGit: false},
		{name: "file protocol", src: "file:///srv/repo.git", isGit: false},

		{name: "subdir climbs", src: "https://host/repo.git#v1:../../etc", isGit: true, err: `invalid git subdir "../../etc"`},
		{name: "subdir climbs inside", src: "https://host/repo.git#v1:a/../../b", isGit: true, err: "invalid git subdir"},
		{name: "query subdir climbs", src: "https://host/repo.git?subdir=../x", isGit: true, err: "invalid git subdir"},
		{name: "subdir option", src: "https://host/repo.git#v1:-x", isGit: true, err: "invalid git subdir"},
		{name: "ref option", src: "https://host/repo.git#--upload-pack=x", isGit: true, err: "invalid git ref"},
		{name: "ref climbs", src: "https://host/repo.git#a..b", isGit: true, err: "invalid git ref"},
		{name: "unknown query", src: "https://host/repo.git?foo=bar", isGit: true, err: `unexpected query "foo"`},
		{name: "fetch-by-commit", src: "https://host/repo.git?fetch-by-commit=true", isGit: true, err: "not supported"},
		{name: "keep-git-dir conflict", src: "https://host/repo.git?keep-git-dir=false", keep: &yes, isGit: true, err: "inconsistent keep-git-dir configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, isGit, err := ParseGitSource(tc.src, tc.keep)
			if isGit != tc.isGit {
				t.Fatalf("isGit = %v, want %v (err %v)", isGit, tc.isGit, err)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil {
				tc.want.raw = tc.src
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(GitSource{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestCheckChecksumGit: ADD --checksum takes git sources as BuildKit does,
// still not local files.
func TestCheckChecksumGit(t *testing.T) {
	for _, tc := range []struct {
		src, err string
	}{
		{src: "https://host/repo.git#v1"},
		{src: "git@host:repo.git"},
		{src: "https://host/f.txt"},
		{src: "local.txt", err: "requires an HTTP(S) or Git source"},
	} {
		sources := instructions.SourcesAndDest{SourcePaths: []string{tc.src}, DestPath: "/x"}
		err := CheckChecksum(sources, "sha256:"+strings.Repeat("0", 64), nil)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err = %v, want %q", tc.src, err, tc.err)
		}
	}
}

// TestGitRunNoLocalTransport: git as slimbuild runs it cannot read a
// repository on the host through file:// or a plain path (as a submodule URL
// or a redirect could ask), nor run a command through ext::.
func TestGitRunNoLocalTransport(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (apt-get install git)")
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", repo).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	home := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	for _, remote := range []string{"file://" + repo, repo, "ext::touch " + marker} {
		_, err := gitRun(context.Background(), home, "", "ls-remote", "--", remote)
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("ls-remote %s: err = %v, want the transport refused", remote, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("ext:: ran a command")
	}
}

// TestRedactURL: a token in a git URL stays out of messages and of a kept .git.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@host/repo.git": "https://user:xxxxx@host/repo.git",
		"https://user@host/repo.git":        "https://user@host/repo.git",
		"git@host:repo.git":                 "git@host:repo.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	msg := redactArgs("fatal: unable to access 'https://user:s3cret@host/repo.git/': s3cret", []string{"ls-remote", "--", "https://user:s3cret@host/repo.git"})
	if strings.Contains(msg, "s3cret") {
		t.Errorf("redactArgs left the password: %q", msg)
	}
}

// FuzzParseGitSource: whatever a Dockerfile names, an accepted git source has a
// subdir that stays inside the checkout and a ref and remote git cannot read as
// options.
func FuzzParseGitSource(f *testing.F) {
	for _, s := range []string{"https://h/r.git#v1:sub", "git@h:r.git#:a/../b", "ssh://h/r.git?subdir=../x", "git://h/r#-x", "https://h/r.git?ref=a&tag=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		g, ok, err := ParseGitSource(src, nil)
		if !ok || err != nil {
			return
		}
		if strings.HasPrefix(g.ref, "-") || strings.HasPrefix(g.remote, "-") || strings.HasPrefix(g.subdir, "-") {
			t.Fatalf("%q: option-like ref %q, remote %q or subdir %q", src, g.ref, g.remote, g.subdir)
		}
		if strings.HasPrefix(g.subdir, "/") || g.subdir == ".." || strings.HasPrefix(g.subdir, "../") || strings.Contains(g.subdir, "/../") {
			t.Fatalf("%q: subdir %q leaves the checkout", src, g.subdir)
		}
	})
}
