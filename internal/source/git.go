package source

// Git sources: ADD of a git repository and git URL build contexts, fetched
// with the git program (exec, no shell) under rules taken from BuildKit's git
// source. Each remote is resolved to a commit with `git ls-remote` first, so a
// step whose key (which holds the commit) is cached is not fetched at all.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"golang.org/x/sys/unix"
)

// GitSource is a parsed git URL (BuildKit's forms: https://host/repo.git,
// git@host:repo.git, ssh://, git://, with #ref, #ref:subdir, #:subdir and the
// ?ref=&tag=&branch=&subdir=&checksum=&keep-git-dir=&submodules=&mtime= query).
type GitSource struct {
	raw         string // as written, for messages
	remote      string // what git is given (no fragment, no query)
	ref         string // "" is the remote's default branch
	subdir      string // clean, relative, "" for the root
	checksum    string // a commit hash (prefix) the ref must resolve to
	keepGitDir  bool
	submodules  bool
	mtimeCommit bool
}

// gitMaxOutput bounds what slimbuild reads from one git command.
const gitMaxOutput = 1 << 20

// ParseGitSource reports whether src is a git URL as BuildKit's Dockerfile
// frontend reads one and, if it is, parses and checks it. keep is ADD
// --keep-git-dir (nil when not given).
func ParseGitSource(src string, keep *bool) (*GitSource, bool, error) {
	ref, isGit, err := dfgitutil.ParseGitRef(src)
	if err != nil {
		if isGit {
			return nil, true, fmt.Errorf("git source %s: %w", src, err)
		}
		return nil, false, nil
	}
	if ref == nil || !isGit || ref.IndistinguishableFromLocal {
		return nil, false, nil
	}
	g := &GitSource{raw: src, remote: ref.Remote, ref: ref.Ref, checksum: ref.Checksum, submodules: true}
	if keep != nil && ref.KeepGitDir != nil && *keep != *ref.KeepGitDir {
		return nil, true, errors.New("inconsistent keep-git-dir configuration")
	}
	if ref.KeepGitDir != nil {
		keep = ref.KeepGitDir
	}
	g.keepGitDir = keep != nil && *keep
	if ref.Submodules != nil {
		g.submodules = *ref.Submodules
	}
	g.mtimeCommit = ref.MTime == "commit"
	if ref.FetchByCommit {
		return nil, true, fmt.Errorf("git source %s: fetch-by-commit is not supported", src)
	}
	// The fragment's subdir is cleaned by the parser ("../x" becomes "x"), which
	// would hide an attempt to climb out: it is checked as written.
	if _, frag, ok := strings.Cut(src, "#"); ok {
		if _, sub, ok := strings.Cut(frag, ":"); ok {
			if err := checkGitPath("subdir", sub); err != nil {
				return nil, true, fmt.Errorf("git source %s: %w", src, err)
			}
		}
	}
	if err := checkGitPath("subdir", ref.SubDir); err != nil {
		return nil, true, fmt.Errorf("git source %s: %w", src, err)
	}
	g.subdir = strings.TrimPrefix(path.Clean("/"+ref.SubDir), "/")
	if err := checkGitRef(g.ref); err != nil {
		return nil, true, fmt.Errorf("git source %s: %w", src, err)
	}
	if strings.HasPrefix(g.remote, "-") {
		return nil, true, fmt.Errorf("git source %s: invalid remote %q", src, g.remote)
	}
	return g, true, nil
}

// checkGitPath refuses a subdir that climbs (a ".." element) or reads as an option.
func checkGitPath(what, p string) error {
	if strings.HasPrefix(p, "-") {
		return fmt.Errorf("invalid git %s %q", what, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("invalid git %s %q: %q is not allowed", what, p, "..")
		}
	}
	return nil
}

// checkGitRef refuses refs that git would read as options or that climb.
func checkGitRef(ref string) error {
	if strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") || strings.ContainsAny(ref, " \t\n\\~^:?*[") {
		return fmt.Errorf("invalid git ref %q", ref)
	}
	return nil
}

var hexRE = regexp.MustCompile(`^[a-fA-F0-9]+$`)

// isCommitSHA reports whether s is a full SHA-1 or SHA-256 object name.
func isCommitSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && hexRE.MatchString(s)
}

// gitRun runs git with args in dir (none when ""), with a sanitised
// environment: no prompts, no system or global configuration, an empty HOME,
// no file:// (or ext::) transport, no hooks. Its output is bounded.
func gitRun(ctx context.Context, home, dir string, args ...string) ([]byte, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git sources need the git program: %w", err)
	}
	full := []string{
		"-c", "protocol.file.allow=never",
		"-c", "protocol.ext.allow=never",
		"-c", "core.hooksPath=/dev/null",
		"-c", "core.fsmonitor=false",
		"-c", "advice.detachedHead=false",
		"-c", "init.defaultBranch=main",
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, git, full...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_ASKPASS=/bin/true",
		"GIT_SSH_COMMAND=ssh -F /dev/null -o BatchMode=yes",
		"LC_ALL=C",
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy", "SSH_AUTH_SOCK"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out, errOut limitedBuffer
	out.max, errOut.max = gitMaxOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := redactArgs(strings.TrimSpace(errOut.String()), args)
		if msg == "" {
			return nil, fmt.Errorf("git %s: %w", args[0], err)
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	if out.over {
		return nil, fmt.Errorf("git %s: output over %d bytes", args[0], gitMaxOutput)
	}
	return out.Bytes(), nil
}

// redactURL hides the password of a URL (a token in https://user:token@host/…).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return u.String()
}

// redactArgs hides, in msg, the passwords of the URLs among args.
func redactArgs(msg string, args []string) string {
	for _, a := range args {
		if r := redactURL(a); r != a {
			u, _ := url.Parse(a)
			pw, _ := u.User.Password()
			msg = strings.ReplaceAll(msg, a, r)
			if pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
	}
	return msg
}

// limitedBuffer keeps the first max bytes written to it and notes the rest.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.max - b.Len(); room < len(p) {
		b.over = true
		if room < 0 {
			room = 0
		}
		p = p[:room]
	}
	b.Buffer.Write(p)
	return n, nil
}

var _ io.Writer = (*limitedBuffer)(nil)

// GitResolved is a remote ref resolved by ls-remote.
type GitResolved struct {
	ref    string // the full ref fetched (refs/heads/…, refs/tags/…), or the commit
	commit string // what ref points to (an annotated tag's own object for tags)
	peeled string // an annotated tag's commit, else ""
}

var symrefRE = regexp.MustCompile(`(?m)^ref:\s+(\S+)\s+HEAD$`)

// resolve finds the commit g's ref names on the remote, as BuildKit does:
// the default branch when no ref is given, an exact full ref first, then a
// branch, then a tag. A full commit hash is taken as it is.
func (g *GitSource) Resolve(ctx context.Context, home string) (GitResolved, error) {
	if g.checksum != "" && !hexRE.MatchString(g.checksum) {
		return GitResolved{}, fmt.Errorf("invalid checksum %s for Git URL, expected hex commit hash", g.checksum)
	}
	if isCommitSHA(g.ref) {
		if g.checksum != "" && !strings.HasPrefix(g.ref, g.checksum) {
			return GitResolved{}, fmt.Errorf("expected checksum to match %s, got %s", g.checksum, g.ref)
		}
		return GitResolved{ref: g.ref, commit: g.ref}, nil
	}
	ref := g.ref
	if ref == "" {
		out, err := gitRun(ctx, home, "", "ls-remote", "--symref", "--", g.remote, "HEAD")
		if err != nil {
			return GitResolved{}, fmt.Errorf("error fetching default branch for repository %s: %w", redactURL(g.remote), err)
		}
		m := symrefRE.FindSubmatch(out)
		if m == nil {
			return GitResolved{}, fmt.Errorf("could not find default branch for repository: %s", redactURL(g.remote))
		}
		ref = string(m[1])
		if err := checkGitRef(ref); err != nil {
			return GitResolved{}, err
		}
	}
	out, err := gitRun(ctx, home, "", "ls-remote", "--", g.remote, ref, ref+"^{}")
	if err != nil {
		return GitResolved{}, fmt.Errorf("failed to fetch remote %s: %w", redactURL(g.remote), err)
	}
	var (
		exact  = "refs/" + strings.TrimPrefix(ref, "refs/")
		head   = "refs/heads/" + strings.TrimPrefix(ref, "refs/heads/")
		tag    = "refs/tags/" + strings.TrimPrefix(ref, "refs/tags/")
		peeled = tag + "^{}"
	)
	var r GitResolved
	var headSHA, tagSHA string
	for _, line := range strings.Split(string(out), "\n") {
		sha, name, _ := strings.Cut(line, "\t")
		switch name {
		case head:
			headSHA = sha
		case tag:
			tagSHA = sha
		case peeled:
			r.peeled = sha
		case exact:
			r.commit, r.ref = sha, name
		}
	}
	// Like git checkout, a branch wins over a tag of the same name.
	if r.commit == "" && headSHA != "" {
		r.commit, r.ref = headSHA, head
	}
	if r.commit != "" && r.ref != tag {
		r.peeled = ""
	}
	if r.commit == "" && tagSHA != "" {
		r.commit, r.ref = tagSHA, tag
	}
	if r.commit == "" {
		return GitResolved{}, fmt.Errorf("repository does not contain ref %s, output: %q", ref, string(out))
	}
	if !isCommitSHA(r.commit) || (r.peeled != "" && !isCommitSHA(r.peeled)) {
		return GitResolved{}, fmt.Errorf("invalid commit sha %q", r.commit)
	}
	if g.checksum != "" && !strings.HasPrefix(r.commit, g.checksum) && (r.peeled == "" || !strings.HasPrefix(r.peeled, g.checksum)) {
		got := r.commit
		if r.peeled != "" {
			got += " or " + r.peeled
		}
		return GitResolved{}, fmt.Errorf("expected checksum to match %s, got %s", g.checksum, got)
	}
	return r, nil
}

// key is what decides the content fetched for r: part of a step's cache key.
func (g *GitSource) Key(r GitResolved) []any {
	commit := r.commit
	if r.peeled != "" && !g.keepGitDir {
		commit = r.peeled // the tag object only matters when .git is kept
	}
	return []any{"git", g.remote, commit, g.subdir, g.keepGitDir, g.submodules, g.mtimeCommit}
}

// fetch checks out r into a new directory under tmp and returns the directory
// to copy (the checkout or its subdir, without .git unless kept) and the
// directory to remove afterwards.
func (g *GitSource) fetch(ctx context.Context, tmp string, r GitResolved) (string, string, error) {
	work, err := os.MkdirTemp(tmp, "git-")
	if err != nil {
		return "", "", err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(work)
		}
	}()
	home := filepath.Join(work, "home")
	repo := filepath.Join(work, "repo")
	for _, d := range []string{home, repo} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", "", err
		}
	}
	run := func(args ...string) ([]byte, error) { return gitRun(ctx, home, repo, args...) }
	if _, err := run("init", "-q"); err != nil {
		return "", "", err
	}
	// A kept .git names the remote without its password (BuildKit's too).
	if _, err := run("remote", "add", "origin", redactURL(g.remote)); err != nil {
		return "", "", err
	}
	// The fetched ref is kept under its own name (tags and branches as on the
	// remote), so that a kept .git looks as BuildKit's does.
	refspec := r.ref + ":" + r.ref
	if isCommitSHA(r.ref) {
		refspec = r.ref
	}
	if _, err := run("fetch", "-q", "-u", "--no-tags", "--depth=1", "--", g.remote, refspec); err != nil {
		return "", "", fmt.Errorf("failed to fetch %s#%s: %w", redactURL(g.remote), g.refName(r), err)
	}
	got, err := run("rev-parse", "--verify", "-q", "FETCH_HEAD")
	if err != nil {
		return "", "", err
	}
	if sha := strings.TrimSpace(string(got)); sha != r.commit {
		return "", "", fmt.Errorf("%s#%s changed while it was fetched (%s, now %s)", redactURL(g.remote), g.refName(r), r.commit, sha)
	}
	if _, err := run("checkout", "-q", "--detach", "FETCH_HEAD"); err != nil {
		return "", "", fmt.Errorf("failed to checkout remote %s: %w", redactURL(g.remote), err)
	}
	if g.submodules && fileExists(filepath.Join(repo, ".gitmodules")) {
		if _, err := run("submodule", "update", "--init", "--recursive", "--depth=1"); err != nil {
			return "", "", fmt.Errorf("failed to update submodules for %s: %w", redactURL(g.remote), err)
		}
	}
	var mtime *time.Time
	if g.mtimeCommit {
		out, err := run("log", "-1", "--format=%ct", "FETCH_HEAD")
		if err != nil {
			return "", "", err
		}
		sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			return "", "", fmt.Errorf("commit time of %s: %w", r.commit, err)
		}
		t := time.Unix(sec, 0)
		mtime = &t
	}
	if !g.keepGitDir || g.subdir != "" {
		if err := os.RemoveAll(filepath.Join(repo, ".git")); err != nil {
			return "", "", err
		}
	}
	dir := repo
	if g.subdir != "" {
		if dir, err = subdirIn(repo, g.subdir); err != nil {
			return "", "", fmt.Errorf("invalid subdir %s: %w", g.subdir, err)
		}
	}
	if err := normaliseCheckout(dir, mtime); err != nil {
		return "", "", err
	}
	ok = true
	return dir, work, nil
}

// refName is the ref as the user gave it, or what the default branch was.
func (g *GitSource) refName(r GitResolved) string {
	if g.ref != "" {
		return g.ref
	}
	return r.ref
}

// subdirIn resolves sub (clean, relative) inside root, every element a real
// directory: a symlink in the path is refused, as BuildKit does, so nothing
// outside the checkout can be reached through one.
func subdirIn(root, sub string) (string, error) {
	p := root
	for _, part := range strings.Split(sub, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("invalid path element %q", part)
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("git subpath %q contains non-directory %q", sub, part)
		}
	}
	return p, nil
}

// normaliseCheckout gives the checkout the modes a umask of 022 gives (what
// BuildKit's checkouts have) whatever this process's umask, and, with
// mtime=commit, every path the commit's time. Links are not followed.
func normaliseCheckout(dir string, mtime *time.Time) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
		case d.IsDir():
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, p)
			return nil
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			perm := fs.FileMode(0o644)
			if fi.Mode()&0o100 != 0 {
				perm = 0o755
			}
			if err := os.Chmod(p, perm); err != nil {
				return err
			}
		}
		if mtime != nil {
			return setMtime(p, *mtime)
		}
		return nil
	})
	if err != nil || mtime == nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setMtime(dirs[i], *mtime); err != nil {
			return err
		}
	}
	return nil
}

func setMtime(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// gitItem is the Item for a fetched checkout directory.
func gitItem(g *GitSource, dir string) (Item, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return Item{}, err
	}
	return Item{host: dir, rel: g.raw, fi: fi, url: g.raw}, nil
}

// IsGitURL reports whether a build context argument is a git URL, as buildx
// reads one (https://…/repo.git, git@host:repo, ssh://, git://).
func IsGitURL(s string) bool {
	_, ok, _ := ParseGitSource(s, nil)
	return ok
}

// FetchGitContext checks out a git URL build context (URL#ref:subdir) into a
// new directory under the store's tmp/ and returns the context directory and
// a function that removes it.
func FetchGitContext(ctx context.Context, st TempDirs, rawURL string) (string, func(), error) {
	g, ok, err := ParseGitSource(rawURL, nil)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, fmt.Errorf("%s is not a git URL", rawURL)
	}
	tmp, err := st.TempDir("gitctx-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	home, err := os.MkdirTemp(tmp, "home-")
	if err != nil {
		cleanup()
		return "", nil, err
	}
	r, err := g.Resolve(ctx, home)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build context %s: %w", rawURL, err)
	}
	dir, _, err := g.fetch(ctx, tmp, r)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build context %s: %w", rawURL, err)
	}
	return dir, cleanup, nil
}

// gitFetch is a git source of an ADD, resolved when the step's key was made.
type gitFetch struct {
	src *GitSource
	res GitResolved
	// work is the directory to remove once the step is done.
	work string
}

// FetchGit returns items with each git source fetched into tmp (the build's
// temp dir), in place; CleanGit removes the checkouts.
func FetchGit(ctx context.Context, tmp string, items []Item) ([]Item, error) {
	out := make([]Item, len(items))
	copy(out, items)
	for i, it := range out {
		if it.git == nil {
			continue
		}
		dir, work, err := it.git.src.fetch(ctx, tmp, it.git.res)
		if err != nil {
			CleanGit(out)
			return nil, err
		}
		fetched, err := gitItem(it.git.src, dir)
		if err != nil {
			os.RemoveAll(work)
			CleanGit(out)
			return nil, err
		}
		fetched.git = &gitFetch{src: it.git.src, res: it.git.res, work: work}
		out[i] = fetched
	}
	return out, nil
}

// CleanGit removes the checkouts FetchGit made.
func CleanGit(items []Item) {
	for _, it := range items {
		if it.git != nil && it.git.work != "" {
			os.RemoveAll(it.git.work)
		}
	}
}
