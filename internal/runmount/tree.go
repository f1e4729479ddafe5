package runmount

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/slimbuild/slimbuild/internal/source"
)

// A View is a throwaway copy-on-write tree (a mounted snapshot): what is
// written under Root never reaches what it shows. Remove unmounts and
// deletes it.
type View interface {
	Root() string
	Remove()
}

// DirTree is a local directory (the build context, a named context
// directory) as a mount reads it; view mounts a copy-on-write view of one of
// its directories for a writable bind.
func DirTree(c *source.Context, view func(dir string) (View, error)) Tree {
	return &dirTree{c: c, view: view}
}

// LayersTree is a stage's or an image's layers as a mount reads them: key is
// their identity, view mounts them.
func LayersTree(key string, view func() (View, error)) Tree {
	return &layersTree{key: key, view: view}
}

type dirTree struct {
	c    *source.Context
	view func(dir string) (View, error)
}

var _ Tree = (*dirTree)(nil)

func (t *dirTree) Local() bool { return true }

func (t *dirTree) Key(p string) (string, error) { return t.c.DigestTree(p) }

func (t *dirTree) Bind(p string, writable bool) (string, bool, func(), error) {
	src, err := t.c.Resolve(p)
	if err != nil {
		return "", false, nil, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", false, nil, fmt.Errorf("RUN --mount source %s: %w", p, err)
	}
	if !fi.IsDir() || !writable {
		return src, true, nil, nil
	}
	// Writes to a bind mount are thrown away, as in BuildKit: bind a
	// copy-on-write view of the context directory.
	v, err := t.view(src)
	if err != nil {
		return "", false, nil, err
	}
	return v.Root(), false, v.Remove, nil
}

// CopyDir copies as a cache seed: what is copied becomes root's, as COPY
// makes a context directory's files.
func (t *dirTree) CopyDir(p, dir string) error {
	return seed(t.c.Dir(), p, dir, source.CopyOptions{Context: t.c, ResetOwner: true})
}

type layersTree struct {
	key  string
	view func() (View, error)
}

var _ Tree = (*layersTree)(nil)

func (t *layersTree) Local() bool { return false }

func (t *layersTree) Key(string) (string, error) { return t.key, nil }

func (t *layersTree) Bind(p string, _ bool) (string, bool, func(), error) {
	v, err := t.view()
	if err != nil {
		return "", false, nil, err
	}
	host, err := securejoin.SecureJoin(v.Root(), p)
	if err != nil {
		v.Remove()
		return "", false, nil, err
	}
	return host, false, v.Remove, nil
}

// CopyDir copies as a cache seed: what is copied keeps its owners and modes.
func (t *layersTree) CopyDir(p, dir string) error {
	v, err := t.view()
	if err != nil {
		return err
	}
	defer v.Remove()
	return seed(v.Root(), p, dir, source.CopyOptions{})
}

// seed copies directory p, resolved inside root, into dir.
func seed(root, p, dir string, opts source.CopyOptions) error {
	host, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(host)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	item := source.HostItem(host, strings.TrimPrefix(path.Clean("/"+p), "/"), fi)
	if err := source.NewCopier(dir, opts).CopyItem(item, "/", true, false); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	return nil
}
