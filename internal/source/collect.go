package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Sources are the sources of a COPY or ADD that are not read --from: git
// repositories and URLs (ADD only) and paths in the build context.
type Sources struct {
	Paths      []string
	Add        bool
	Checksum   string // ADD --checksum
	KeepGitDir *bool  // ADD --keep-git-dir (nil when not given)
	// Context is the build context the paths are matched in.
	Context *Context
	// TempDir returns the build's temp dir, where downloads go and git gets
	// its HOME; it is called only when one of them is needed.
	TempDir func() (string, error)
}

// Collected is what Collect found.
type Collected struct {
	Items []Item
	// Key is what the items add to the step's cache key: each git source's
	// commit, each URL's digest and time, the digest of what the context
	// paths select.
	Key []any
	// Downloads are the downloaded files, which the caller removes when the
	// step is done.
	Downloads []string
}

// Collect resolves s: git sources to their commit (not fetched yet: see
// FetchGit), URLs downloaded, context paths matched. A COPY naming a git ref
// or a URL is an error. On an error nothing downloaded stays.
func (m *Matcher) Collect(ctx context.Context, s Sources) (res Collected, err error) {
	defer func() {
		if err != nil {
			for _, d := range res.Downloads {
				os.Remove(d)
			}
			res = Collected{}
		}
	}()
	var local []string
	for _, p := range s.Paths {
		g, isGit, err := ParseGitSource(p, s.KeepGitDir)
		if err != nil {
			return res, err
		}
		if isGit {
			if !s.Add {
				return res, fmt.Errorf("source can't be a git ref for COPY: %s", p)
			}
			if s.Checksum != "" {
				if err := g.SetChecksum(s.Checksum); err != nil {
					return res, err
				}
			}
			home, err := gitHome(s.TempDir)
			if err != nil {
				return res, err
			}
			r, err := g.Resolve(ctx, home)
			if err != nil {
				return res, fmt.Errorf("ADD %s: %w", p, err)
			}
			res.Items = append(res.Items, GitItem(p, g, r))
			res.Key = append(res.Key, g.Key(r)...)
			continue
		}
		if IsURL(p) {
			if !s.Add {
				return res, fmt.Errorf("source can't be a URL for COPY: %s", p)
			}
			tmp, err := s.TempDir()
			if err != nil {
				return res, err
			}
			it, sum, err := Download(ctx, tmp, p, s.Checksum)
			if err != nil {
				return res, err
			}
			res.Downloads = append(res.Downloads, it.Host())
			res.Items = append(res.Items, it)
			res.Key = append(res.Key, "url", p, sum, it.ModTime().Unix())
			continue
		}
		local = append(local, p)
	}
	if len(local) > 0 {
		ctxItems, sum, err := m.InContext(s.Context, local)
		if err != nil {
			return res, err
		}
		res.Key = append(res.Key, "context", sum)
		res.Items = append(res.Items, ctxItems...)
	}
	return res, nil
}

// gitHome is an empty directory for git's HOME in the build's temp dir.
func gitHome(tempDir func() (string, error)) (string, error) {
	tmp, err := tempDir()
	if err != nil {
		return "", err
	}
	home := filepath.Join(tmp, "git-home")
	if err := os.Mkdir(home, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return home, nil
}
