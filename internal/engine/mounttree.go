package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/slimbuild/slimbuild/internal/runmount"
	"github.com/slimbuild/slimbuild/internal/source"
)

// mounts resolves the build's RUN --mount flags.
func (b *builder) mounts() *runmount.Mounter {
	return runmount.New(runmount.Config{
		Sources:  mountSources{b},
		CacheDir: filepath.Join(b.st.Root(), "mounts"),
		Secrets:  b.opts.Secrets,
		SSH:      b.opts.SSH,
	})
}

// mountSources gives RUN --mount the trees it reads: the build context, or
// what a from= names (fromSource).
type mountSources struct{ b *builder }

var _ runmount.Sources = mountSources{}

func (s mountSources) Tree(ctx context.Context, from string) (runmount.Tree, error) {
	if from == "" {
		return &mountTree{b: s.b, src: &origin{dir: s.b.bctx}}, nil
	}
	src, err := s.b.fromSource(ctx, from)
	if err != nil {
		return nil, err
	}
	return &mountTree{b: s.b, src: src}, nil
}

// mountTree is a source as a RUN mount reads it.
type mountTree struct {
	b   *builder
	src *origin
}

var _ runmount.Tree = (*mountTree)(nil)

func (t *mountTree) Local() bool { return t.src.dir != nil }

func (t *mountTree) Key(p string) (string, error) {
	if t.src.dir == nil {
		return t.src.key, nil
	}
	return t.src.dir.DigestTree(p)
}

func (t *mountTree) Bind(p string, writable bool) (string, bool, func(), error) {
	if dir := t.src.dir; dir != nil {
		src, err := dir.Resolve(p)
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
		view, err := t.b.mountDirView(src)
		if err != nil {
			return "", false, nil, err
		}
		return view.Root(), false, view.Remove, nil
	}
	view, err := t.b.mountWorkspace(t.src.layers)
	if err != nil {
		return "", false, nil, err
	}
	host, err := inRoot(view.Root(), p)
	if err != nil {
		view.Remove()
		return "", false, nil, err
	}
	return host, false, view.Remove, nil
}

// CopyDir copies as a cache seed: the path is resolved inside the source's
// root, and what is copied keeps its owners and modes (a context directory's
// files are root's, as COPY makes them).
func (t *mountTree) CopyDir(p, dir string) error {
	opts := source.CopyOptions{}
	root := ""
	if t.src.dir != nil {
		root, opts.Context, opts.ResetOwner = t.src.dir.Dir(), t.src.dir, true
	} else {
		view, err := t.b.mountWorkspace(t.src.layers)
		if err != nil {
			return err
		}
		defer view.Remove()
		root = view.Root()
	}
	host, err := inRoot(root, p)
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
