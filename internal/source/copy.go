package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	digest "github.com/opencontainers/go-digest"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/runtime"
	mode "github.com/tonistiigi/dchapes-mode"
	"golang.org/x/sys/unix"
)

// Item is one matched source: a file, directory or link on the host.
type Item struct {
	host string      // path to read
	rel  string      // the source as named (for messages), slash-separated
	fi   fs.FileInfo // Stat of host (the named source's own symlink is followed)
	url  string      // for ADD URL: where it was downloaded from
	data *string     // heredoc content
	name string      // heredoc or URL file name
	// git, for an ADD of a git repository, is fetched when the step runs (a
	// cache hit does not fetch); url is then the source as written.
	git *gitFetch
	// filter, for a directory, selects what under it is copied (COPY --exclude,
	// --parents); nil copies everything.
	filter *copyFilter
}

// copyFilter selects the paths under a directory source that a COPY copies
// (relative to it, slash-separated), as BuildKit's copy does: include is the
// --parents pattern below the pivot (a path is kept when it or a parent
// matches), exclude the --exclude patterns (a path is dropped when it or a
// parent matches, "!" exceptions bringing paths back). A directory that is not
// kept itself is made when something under it is, with its source's metadata.
type copyFilter struct {
	include, exclude *patternmatcher.PatternMatcher
}

func (f *copyFilter) keep(rel string) bool {
	if f == nil || rel == "" {
		return true
	}
	if f.include != nil {
		if ok, err := f.include.MatchesOrParentMatches(rel); err != nil || !ok {
			return false
		}
	}
	if f.exclude != nil {
		if ok, err := f.exclude.MatchesOrParentMatches(rel); err != nil || ok {
			return false
		}
	}
	return true
}

// prune reports whether a directory that is not kept can be skipped whole.
func (f *copyFilter) prune(rel string) bool {
	if f == nil || f.include != nil || f.exclude == nil || f.exclude.Exclusions() {
		return false
	}
	return !f.keep(rel)
}

// simple is true when the filter only drops whole subtrees (no lazy parents).
func (f *copyFilter) simple() bool {
	return f == nil || (f.include == nil && (f.exclude == nil || !f.exclude.Exclusions()))
}

// withExclude returns the filter with --exclude's matcher added.
func (f *copyFilter) withExclude(m *patternmatcher.PatternMatcher) *copyFilter {
	if m == nil {
		return f
	}
	out := &copyFilter{exclude: m}
	if f != nil {
		out.include = f.include
	}
	return out
}

// parentSources resolves COPY --parents sources under root. Each names a pivot
// directory before "/./" (the root without one) and a pattern after it; the
// pivot's contents that the pattern matches are copied with their directories
// relative to the pivot. A pattern without wildcards must exist.
func parentSources(root string, patterns []string, bctx *Context) ([]Item, error) {
	var items []Item
	for _, p := range patterns {
		pivot, pattern, ok := strings.Cut(filepath.ToSlash(p), "/./")
		if !ok {
			pivot, pattern = ".", filepath.ToSlash(p)
		}
		pattern = strings.TrimPrefix(path.Clean("/"+pattern), "/")
		pivots, err := matchSources(root, []string{pivot}, bctx)
		if err != nil {
			return nil, err
		}
		var include *patternmatcher.PatternMatcher
		if pattern != "" {
			if include, err = patternmatcher.New([]string{pattern}); err != nil {
				return nil, fmt.Errorf("COPY --parents %s: %w", p, err)
			}
		}
		for _, it := range pivots {
			if !it.fi.IsDir() {
				return nil, fmt.Errorf("COPY --parents %s: %s is not a directory", p, pivot)
			}
			if !hasWildcard(pattern) && pattern != "" {
				hp, err := inRoot(root, path.Join("/", it.rel, pattern))
				if err != nil {
					return nil, err
				}
				if _, err := os.Lstat(hp); err != nil {
					return nil, fmt.Errorf("COPY source %q not found", p)
				}
			}
			it.filter = &copyFilter{include: include}
			items = append(items, it)
		}
	}
	return items, nil
}

// contextItems finds the source patterns in a context directory (the main
// one or a named one) with find and hashes what they select for the step's key.
func contextItems(c *Context, patterns []string, find func(string, []string, *Context) ([]Item, error)) ([]Item, string, error) {
	items, err := find(c.dir, patterns, c)
	if err != nil {
		return nil, "", err
	}
	if len(items) == 0 {
		return nil, "", fmt.Errorf("no source files were specified: %s matched nothing in the build context", strings.Join(patterns, " "))
	}
	h := sha256.New()
	for _, it := range items {
		fmt.Fprintf(h, "item %s %v\n", it.rel, it.fi.IsDir())
	}
	if err := c.hashItems(h, items); err != nil {
		return nil, "", err
	}
	return items, hex.EncodeToString(h.Sum(nil)), nil
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// matchSources finds what the source patterns name under root.
func matchSources(root string, patterns []string, bctx *Context) ([]Item, error) {
	var items []Item
	for _, p := range patterns {
		clean := path.Clean("/" + filepath.ToSlash(p))
		if bctx != nil {
			if rp := path.Clean(filepath.ToSlash(p)); rp == ".." || strings.HasPrefix(rp, "../") {
				return nil, fmt.Errorf("COPY source %s is outside the build context", p)
			}
		}
		if !hasWildcard(clean) {
			hp, err := inRoot(root, clean)
			if err != nil {
				return nil, err
			}
			fi, err := os.Stat(hp)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					if bctx != nil {
						return nil, fmt.Errorf("COPY source %q not found in the build context %s", p, root)
					}
					return nil, fmt.Errorf("COPY source %q not found", p)
				}
				return nil, err
			}
			rel := strings.TrimPrefix(clean, "/")
			if bctx != nil && rel != "" && bctx.excluded(rel) && (!fi.IsDir() || bctx.skipDir(rel)) {
				return nil, fmt.Errorf("COPY source %q is excluded by .dockerignore", p)
			}
			items = append(items, Item{host: hp, rel: rel, fi: fi})
			continue
		}
		matched, err := glob(root, strings.TrimPrefix(clean, "/"))
		if err != nil {
			return nil, err
		}
		for _, m := range matched {
			if bctx != nil && bctx.excluded(m) {
				continue
			}
			hp, err := inRoot(root, m)
			if err != nil {
				return nil, err
			}
			fi, err := os.Stat(hp)
			if err != nil {
				continue
			}
			items = append(items, Item{host: hp, rel: m, fi: fi})
		}
	}
	return items, nil
}

// glob matches a slash-separated pattern under root, one path element at a time,
// never leaving root.
func glob(root, pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	cur := []string{""}
	for _, part := range parts {
		var next []string
		for _, dir := range cur {
			if !hasWildcard(part) {
				next = append(next, path.Join(dir, part))
				continue
			}
			hp, err := inRoot(root, dir)
			if err != nil {
				return nil, err
			}
			entries, err := os.ReadDir(hp)
			if err != nil {
				continue
			}
			for _, e := range entries {
				ok, err := path.Match(part, e.Name())
				if err != nil {
					return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
				}
				if ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cur = next
	}
	var out []string
	for _, p := range cur {
		hp, err := inRoot(root, p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(hp); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// walkItem calls fn for the item and, for a directory, everything under it, with
// rel relative to the item ("" for the item itself). Context paths excluded by
// .dockerignore are left out. Links inside directories are not followed.
func walkItem(it Item, bctx *Context, fn func(rel, host string, fi fs.FileInfo) error) error {
	return walkEntries(it, bctx, func(rel, host string, d fs.DirEntry) error {
		if d == nil {
			return fn(rel, host, it.fi)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(rel, host, fi)
	})
}

// walkEntries is walkItem without the Lstat: d is nil for the item itself.
func walkEntries(it Item, bctx *Context, fn func(rel, host string, d fs.DirEntry) error) error {
	if err := fn("", it.host, nil); err != nil {
		return err
	}
	if !it.fi.IsDir() {
		return nil
	}
	return filepath.WalkDir(it.host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == it.host {
			return nil
		}
		rel := filepath.ToSlash(p[len(it.host)+1:])
		if bctx != nil {
			crel := path.Join(it.rel, rel)
			if d.IsDir() && bctx.skipDir(crel) {
				return filepath.SkipDir
			}
			if bctx.excluded(crel) {
				return nil
			}
		}
		return fn(rel, p, d)
	})
}

// owner is a resolved --chown.
type Owner struct {
	set      bool
	uid, gid int
}

// ResolveChown resolves --chown against the destination's /etc/passwd and /etc/group.
// See the comment inside on the group of a user given without one.
func ResolveChown(rootfs, chown string) (Owner, error) {
	if chown == "" {
		return Owner{}, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(chown, ":")
	u, err := runtime.ResolveUser(rootfs, userPart)
	if err != nil {
		return Owner{}, fmt.Errorf("--chown=%s: %w", chown, err)
	}
	// A numeric user without a group uses the same number as group; a named one
	// uses its primary group from /etc/passwd (as BuildKit does).
	o := Owner{set: true, uid: int(u.UID), gid: int(u.GID)}
	if _, err := strconv.Atoi(userPart); err == nil {
		o.gid = o.uid
	}
	if hasGroup {
		g, err := runtime.ResolveUser(rootfs, "0:"+groupPart)
		if err != nil {
			return Owner{}, fmt.Errorf("--chown=%s: %w", chown, err)
		}
		o.gid = int(g.GID)
	}
	return o, nil
}

// ParseChmod reads --chmod: an octal mode, or a symbolic one (u+x,go-w,
// a=rX...) applied to each file's own mode, as BuildKit 0.34 accepts.
func ParseChmod(s string) (Chmod, error) {
	m, ok, err := parseOctalChmod(s)
	if err == nil {
		return Chmod{Mode: m, Set: ok}, nil
	}
	if _, nerr := strconv.ParseUint(s, 10, 64); nerr == nil || strings.Trim(s, "01234567") == "" {
		return Chmod{}, err
	}
	set, serr := mode.Parse(s)
	if serr != nil {
		return Chmod{}, fmt.Errorf("--chmod=%s: neither an octal mode nor a symbolic one: %w", s, serr)
	}
	return Chmod{Symbolic: &set}, nil
}

func parseOctalChmod(s string) (fs.FileMode, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, false, fmt.Errorf("--chmod=%s: only octal modes are supported", s)
	}
	return layer.FileMode(int64(n)), true, nil
}

// A Chowner sets the owner of a host path that the copier has already
// resolved inside its root, without following it when it is a symlink, as
// os.Lchown does. The copier, the archives it unpacks and MkdirAllOwned set
// owners only through one, so that a caller that cannot set them (a test
// without root) can record them instead; nil is os.Lchown.
type Chowner func(path string, uid, gid int) error

// lchown is the one place that sets an owner.
func (f Chowner) lchown(path string, uid, gid int) error {
	if f == nil {
		return os.Lchown(path, uid, gid)
	}
	return f(path, uid, gid)
}

// Copier writes sources into a mounted root.
//
// A Copier is not safe for concurrent use.
type Copier struct {
	root     string
	own      Owner
	chmod    fs.FileMode
	hasChmod bool
	// chmodSet is a symbolic --chmod, applied to each copied file's mode
	// (directories made for the destination stay 0755).
	chmodSet   *mode.Set
	resetOwner bool // context files belong to 0:0 unless --chown
	bctx       *Context
	chown      Chowner
	buf        []byte
	// done holds the directories this copy has made or merged (host paths).
	done map[string]bool
}

func (c *Copier) ids(fi fs.FileInfo) (int, int) {
	if c.own.set {
		return c.own.uid, c.own.gid
	}
	if c.resetOwner {
		return 0, 0
	}
	if st, ok := sysStat(fi); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// mkdirAll creates dir (an image path) and missing parents, owned by --chown's
// owner or root, with --chmod's mode or 0755 (as BuildKit does).
func (c *Copier) mkdirAll(dir string) (string, error) {
	uid, gid := 0, 0
	if c.own.set {
		uid, gid = c.own.uid, c.own.gid
	}
	perm := fs.FileMode(0o755)
	if c.hasChmod {
		perm = c.chmod
	}
	return mkdirAllMode(c.root, dir, uid, gid, perm, c.chown)
}

// MkdirAllOwned creates dir (an image path, resolved inside root) and its missing
// parents with mode 0755, owned by uid:gid (set through chown), and returns its
// host path.
func MkdirAllOwned(root, dir string, uid, gid int, chown Chowner) (string, error) {
	return mkdirAllMode(root, dir, uid, gid, 0o755, chown)
}

// mkdirAllMode is MkdirAllOwned with the created directories' mode.
func mkdirAllMode(root, dir string, uid, gid int, perm fs.FileMode, chown Chowner) (string, error) {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		hp, err := inRoot(root, cur)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(hp)
		if err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("%s is not a directory", cur)
			}
			continue
		}
		if err := os.Mkdir(hp, 0o755); err != nil {
			return "", err
		}
		if err := chown.lchown(hp, uid, gid); err != nil {
			return "", err
		}
		if err := os.Chmod(hp, perm); err != nil {
			return "", err
		}
	}
	return inRoot(root, dir)
}

func (c *Copier) CopyItem(it Item, dest string, destIsDir, unpack bool) error {
	if it.data != nil {
		target := dest
		if destIsDir {
			target = path.Join(dest, it.name)
		}
		if _, err := c.mkdirAll(path.Dir(target)); err != nil {
			return err
		}
		hp, err := inRoot(c.root, target)
		if err != nil {
			return err
		}
		os.Remove(hp)
		mode := fs.FileMode(0o644)
		if c.hasChmod {
			mode = c.chmod
		} else if c.chmodSet != nil {
			mode = c.chmodSet.Apply(mode)
		}
		if err := os.WriteFile(hp, []byte(*it.data), mode.Perm()); err != nil {
			return err
		}
		uid, gid := 0, 0
		if c.own.set {
			uid, gid = c.own.uid, c.own.gid
		}
		if err := c.chown.lchown(hp, uid, gid); err != nil {
			return err
		}
		return os.Chmod(hp, mode)
	}
	if unpack && it.fi.Mode().IsRegular() {
		ok, err := c.tryExtract(it, dest)
		if err != nil || ok {
			return err
		}
	}
	if it.fi.IsDir() {
		// A directory source copies its contents: an existing destination keeps
		// its metadata, a created one is 0755 (or --chmod) and root's (or --chown's).
		top, err := c.mkdirAll(dest)
		if err != nil {
			return err
		}
		bctx := c.bctx
		if it.url != "" {
			bctx = nil // a git checkout: the context's .dockerignore is not its
		}
		return walkItem(it, bctx, func(rel, host string, fi fs.FileInfo) error {
			if rel == "" {
				return nil
			}
			target := filepath.Join(top, filepath.FromSlash(rel))
			if it.filter != nil {
				if !it.filter.keep(rel) {
					if fi.IsDir() && it.filter.prune(rel) {
						return filepath.SkipDir
					}
					return nil
				}
				if err := c.ensureParents(top, it.host, rel, true); err != nil {
					return err
				}
			}
			if bctx != nil && bctx.ignore != nil && bctx.ignore.Exclusions() {
				// An excluded directory is walked for its exceptions but not
				// copied itself: make it when something under it is.
				if err := c.ensureParents(top, it.host, rel, false); err != nil {
					return err
				}
			}
			return c.copyEntry(host, target, fi)
		})
	}
	target := dest
	if !destIsDir {
		if hp, err := inRoot(c.root, dest); err == nil {
			if fi, err := os.Stat(hp); err == nil && fi.IsDir() {
				destIsDir = true
			}
		}
	}
	if destIsDir {
		target = path.Join(dest, path.Base("/"+it.rel))
		if it.name != "" {
			target = path.Join(dest, it.name)
		}
	}
	// A symlink at the destination is followed, inside the root, as BuildKit does.
	if hp, err := inRoot(c.root, target); err == nil {
		target = "/" + strings.TrimPrefix(strings.TrimPrefix(hp, c.root), "/")
	}
	parent, err := c.mkdirAll(path.Dir(target))
	if err != nil {
		return err
	}
	return c.copyEntry(it.host, filepath.Join(parent, path.Base(target)), it.fi)
}

// ensureParents copies the directories between top and rel's parent that this
// copy has not handled yet from the matching source directories under src.
// Directories that COPY --exclude or --parents left out (filtered) are made
// as BuildKit makes them when something under them is copied: one that exists
// takes the source's mode and keeps its owner; a new one gets the source's
// metadata (or --chown's, --chmod's).
func (c *Copier) ensureParents(top, src, rel string, filtered bool) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if c.done == nil {
		c.done = map[string]bool{}
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		target := filepath.Join(top, filepath.FromSlash(cur))
		if c.done[target] {
			continue
		}
		host := filepath.Join(src, filepath.FromSlash(cur))
		fi, err := os.Lstat(host)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", cur)
		}
		if old, err := os.Lstat(target); err == nil && old.IsDir() && filtered {
			c.done[target] = true
			mode := fi.Mode()
			if err := os.Chmod(target, mode.Perm()|(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))); err != nil {
				return err
			}
			continue
		}
		if err := c.copyEntry(host, target, fi); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one file, link, directory or special file to target (a host path
// whose parent exists), replacing what is there unless both are directories.
func (c *Copier) copyEntry(src, target string, fi fs.FileInfo) error {
	mode := fi.Mode()
	if old, err := os.Lstat(target); err == nil {
		if !(old.IsDir() && mode.IsDir()) {
			if err := os.RemoveAll(target); err != nil {
				return err
			}
		}
	}
	switch {
	case mode.IsDir():
		if c.done == nil {
			c.done = map[string]bool{}
		}
		c.done[target] = true
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, target); err != nil {
			return err
		}
	case mode.IsRegular():
		if err := c.copyFile(src, target); err != nil {
			return err
		}
	default:
		st, ok := sysStat(fi)
		if !ok {
			return fmt.Errorf("%s: unsupported file type", src)
		}
		if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("creating %s: %w", target, err)
		}
	}
	return c.applyMeta(target, fi, mode.IsDir())
}

func (c *Copier) copyFile(src, target string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// io.Copy between files uses copy_file_range where the kernel can.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// applyMeta sets owner, mode and modification time on target.
func (c *Copier) applyMeta(target string, fi fs.FileInfo, isDir bool) error {
	uid, gid := c.ids(fi)
	if err := c.chown.lchown(target, uid, gid); err != nil {
		return err
	}
	mode := fi.Mode()
	if mode&fs.ModeSymlink == 0 {
		perm := mode.Perm() | (mode & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
		if c.hasChmod {
			perm = c.chmod
		} else if c.chmodSet != nil {
			m := c.chmodSet.Apply(mode)
			perm = m.Perm() | (m & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
		}
		if err := os.Chmod(target, perm); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// tryExtract unpacks it into dest when it is a (possibly compressed) tar
// archive, merged into what is there by layer's extractor.
func (c *Copier) tryExtract(it Item, dest string) (bool, error) {
	f, err := os.Open(it.host)
	if err != nil {
		return false, err
	}
	defer f.Close()
	a, err := layer.OpenArchive(f)
	if err != nil {
		return false, nil
	}
	defer a.Close()
	// --chmod does not apply to what an archive holds, nor to the directory
	// it is unpacked into (BuildKit); --chown does.
	plain := *c
	plain.hasChmod = false
	top, err := plain.mkdirAll(dest)
	if err != nil {
		return true, err
	}
	opts := layer.MergeOptions{Lchown: c.chown.lchown}
	if c.own.set {
		opts.Owner = &layer.Owner{UID: c.own.uid, GID: c.own.gid}
	}
	if err := a.Merge(top, opts); err != nil {
		return true, fmt.Errorf("extracting %s: %w", it.rel, err)
	}
	return true, nil
}

// CheckChecksum applies BuildKit's rules to ADD --checksum: one source, an
// HTTP(S) URL with a well-formed digest or a git URL (whose commit it names,
// checked when the ref is resolved).
func CheckChecksum(sources instructions.SourcesAndDest, checksum string, keep *bool) error {
	if checksum == "" {
		return nil
	}
	if len(sources.SourcePaths)+len(sources.SourceContents) != 1 {
		return fmt.Errorf("ADD --checksum can't be specified for multiple sources")
	}
	if len(sources.SourcePaths) == 1 {
		if _, isGit, _ := ParseGitSource(sources.SourcePaths[0], keep); isGit {
			return nil
		}
	}
	if len(sources.SourcePaths) != 1 || !isURL(sources.SourcePaths[0]) {
		return fmt.Errorf("ADD --checksum requires an HTTP(S) or Git source, not a local file")
	}
	if _, err := digest.Parse(checksum); err != nil {
		return fmt.Errorf("ADD --checksum=%s: %w", checksum, err)
	}
	return nil
}

// Download fetches an ADD URL into tmp (the build's temp dir) and returns it
// with the sha256 of its content, computed while it was written. The caller
// removes the item's Host when done.
func Download(ctx context.Context, tmp, rawURL, checksum string) (Item, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Item{}, "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Item{}, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Item{}, "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Item{}, "", fmt.Errorf("ADD %s: %s", rawURL, resp.Status)
	}
	f, err := os.CreateTemp(tmp, "download-")
	if err != nil {
		return Item{}, "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return Item{}, "", fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	f.Close()
	sum := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" {
		if got := sum; got != checksum {
			os.Remove(f.Name())
			return Item{}, "", fmt.Errorf("ADD %s: checksum mismatch: got %s, want %s", rawURL, got, checksum)
		}
	}
	mtime := time.Unix(0, 0)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	os.Chmod(f.Name(), 0o600)
	os.Chtimes(f.Name(), mtime, mtime)
	fi, err := os.Stat(f.Name())
	if err != nil {
		return Item{}, "", err
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "index.html"
	}
	return Item{host: f.Name(), rel: rawURL, fi: fi, url: rawURL, name: name}, sum, nil
}
