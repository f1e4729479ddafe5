package source

import (
	"fmt"
	"io/fs"
	"path"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/slimbuild/slimbuild/internal/layer"
	mode "github.com/tonistiigi/dchapes-mode"
)

// Heredoc is the item of a COPY or ADD heredoc: data, written as name.
func Heredoc(name, data string) Item {
	return Item{data: &data, name: path.Base(name)}
}

// HostItem is the item of a file or directory at host, named rel (for
// messages; slash-separated) and described by fi (os.Stat of host).
func HostItem(host, rel string, fi fs.FileInfo) Item {
	return Item{host: host, rel: rel, fi: fi}
}

// GitItem is the item of an ADD of the git repository src (as written),
// resolved to r; FetchGit checks it out when the step runs.
func GitItem(src string, g *GitSource, r GitResolved) Item {
	return Item{rel: src, url: src, git: &gitFetch{src: g, res: r}}
}

// Host is where the item is read on the host ("" for a heredoc and an
// unfetched git source).
func (it Item) Host() string { return it.host }

// ModTime is the item's modification time (zero for a heredoc or an
// unfetched git source).
func (it Item) ModTime() time.Time {
	if it.fi == nil {
		return time.Time{}
	}
	return it.fi.ModTime()
}

// IsHeredoc reports whether the item is a heredoc.
func (it Item) IsHeredoc() bool { return it.data != nil }

// IsRemote reports whether the item comes from a URL (HTTP or git).
func (it Item) IsRemote() bool { return it.url != "" }

// IsURL reports whether a source is an HTTP(S) URL.
func IsURL(s string) bool { return isURL(s) }

// SetChecksum sets the commit that ADD --checksum names for g; it must agree
// with one given in the URL.
func (g *GitSource) SetChecksum(sum string) error {
	if g.checksum != "" && g.checksum != sum {
		return fmt.Errorf("checksum mismatch %q != %q", sum, g.checksum)
	}
	g.checksum = sum
	return nil
}

// Matcher finds a COPY's sources under a root: plain paths and globs, or
// COPY --parents patterns, with --exclude applied to directories.
type Matcher struct {
	parents bool
	exclude *patternmatcher.PatternMatcher
}

// NewMatcher is the matcher of a COPY with --parents and --exclude patterns.
func NewMatcher(parents bool, excludes []string) (*Matcher, error) {
	m := &Matcher{parents: parents}
	if len(excludes) > 0 {
		pm, err := patternmatcher.New(excludes)
		if err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
		m.exclude = pm
	}
	return m, nil
}

// Match matches the source paths under root: a context directory (c is its
// Context) or a mounted image (c is nil). What matches nothing is left out
// for globs and an error for plain paths.
func (m *Matcher) Match(root string, paths []string, c *Context) ([]Item, error) {
	var items []Item
	var err error
	if m.parents {
		items, err = parentSources(root, paths, c)
	} else {
		items, err = matchSources(root, paths, c)
	}
	for i := range items {
		if items[i].fi.IsDir() {
			items[i].filter = items[i].filter.withExclude(m.exclude)
		}
	}
	return items, err
}

// InContext matches patterns in the context directory c and returns the items
// with a digest of everything they select, for the step's cache key.
func (m *Matcher) InContext(c *Context, patterns []string) ([]Item, string, error) {
	return contextItems(c, patterns, m.Match)
}

// CopyOptions is how a Copier places what it copies.
type CopyOptions struct {
	// Owner is --chown's owner (unset: see ResetOwner).
	Owner Owner
	// Chmod is --chmod, as ParseChmod returns it.
	Chmod Chmod
	// ResetOwner makes copied files root's unless Owner is set (COPY from a
	// context); otherwise they keep their owners.
	ResetOwner bool
	// Context is the context directory the items come from (nil for a stage
	// or an image): its .dockerignore applies to directory sources.
	Context *Context
	// Lchown sets every owner the copier gives (nil: os.Lchown).
	Lchown Chowner
}

// Chmod is a parsed --chmod: an octal mode (Set) or a symbolic one (Symbolic).
type Chmod struct {
	Mode     fs.FileMode
	Set      bool
	Symbolic *mode.Set
}

// NewCopier is a Copier that writes into root.
func NewCopier(root string, o CopyOptions) *Copier {
	return &Copier{root: root, own: o.Owner, chmod: o.Chmod.Mode, hasChmod: o.Chmod.Set, chmodSet: o.Chmod.Symbolic, resetOwner: o.ResetOwner, bctx: o.Context, chown: o.Lchown}
}

// WithRoot is a copy of c that writes into root instead.
func (c *Copier) WithRoot(root string) *Copier {
	lc := *c
	lc.root, lc.done = root, nil
	return &lc
}

// Context is the context directory c copies from (nil for a stage or an image).
func (c *Copier) Context() *Context { return c.bctx }

// Write streams the plan into tw: own is --chown's owner, resetOwner makes
// files root's without one, chmod (when hasChmod) is --chmod's mode.
func (p *DirectPlan) Write(tw *layer.Writer, own Owner, resetOwner bool, chmod fs.FileMode, hasChmod bool) error {
	opts := layer.AddOptions{}
	switch {
	case own.set:
		opts.Owner = &layer.Owner{UID: own.uid, GID: own.gid}
	case resetOwner:
		opts.Owner = &layer.Owner{}
	}
	if hasChmod {
		perm := layer.UnixMode(chmod)
		opts.Perm = &perm
	}
	for _, s := range p.steps {
		if s.mkdir != nil {
			if err := tw.Mkdir(s.mkdir.name, s.mkdir.perm, s.mkdir.owner, s.mkdir.mtime); err != nil {
				return err
			}
			continue
		}
		o := opts
		o.Skip, o.ContentsOnly = s.skip, s.contents
		if err := tw.Add(s.src, s.dest, o); err != nil {
			return err
		}
	}
	return nil
}

// inRoot resolves an image path inside a mounted root, following the image's own
// symlinks without leaving it.
func inRoot(root, p string) (string, error) {
	return securejoin.SecureJoin(root, p)
}

func sysStat(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}
