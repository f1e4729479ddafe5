package engine

import (
	"context"
	"path/filepath"

	"github.com/slimbuild/slimbuild/internal/runmount"
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
// what a from= names (fromSource), viewed through the build's snapshots.
type mountSources struct{ b *builder }

var _ runmount.Sources = mountSources{}

func (s mountSources) Tree(ctx context.Context, from string) (runmount.Tree, error) {
	src := &origin{dir: s.b.bctx}
	if from != "" {
		var err error
		if src, err = s.b.fromSource(ctx, from); err != nil {
			return nil, err
		}
	}
	if src.dir != nil {
		return runmount.DirTree(src.dir, func(dir string) (runmount.View, error) { return s.b.mountDirView(dir) }), nil
	}
	return runmount.LayersTree(src.key, func() (runmount.View, error) { return s.b.mountWorkspace(src.layers) }), nil
}
