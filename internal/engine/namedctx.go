package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/source"
)

// namedCtx is a named context being used by the build: what it resolves to
// is found on first use (an image once per platform, by the build's
// image.Resolver).
type namedCtx struct {
	name string // as given in the Dockerfile, for errors
	spec image.NamedContext

	mu  sync.Mutex
	dir *source.Context // Dir
}

// namedContext returns the named context that ref (a FROM base, a stage's
// name or a --from) names, nil when none does.
func (b *builder) namedContext(ref string) *namedCtx {
	if len(b.opts.NamedContexts) == 0 || strings.EqualFold(ref, "scratch") || strings.EqualFold(ref, "context") {
		return nil
	}
	// Names compare as BuildKit normalizes them: "alpine", "alpine:latest"
	// and "docker.io/library/alpine" are the same name.
	key, err := image.NormalizeName(ref)
	if err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if nc, ok := b.named[key]; ok {
		return nc
	}
	spec, ok := b.opts.NamedContexts[key]
	if !ok {
		return nil
	}
	if b.named == nil {
		b.named = map[string]*namedCtx{}
	}
	nc := &namedCtx{name: ref, spec: spec}
	b.named[key] = nc
	return nc
}

// loadNamed resolves nc: its image for platform p, or its directory (nil
// image).
func (b *builder) loadNamed(ctx context.Context, nc *namedCtx, p v1.Platform) (v1.Image, error) {
	if nc.spec.Dir == "" {
		img, err := b.images.Named(ctx, nc.spec, p)
		if err != nil {
			return nil, fmt.Errorf("--build-context %s: %w", nc.name, err)
		}
		return img, nil
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.dir == nil {
		c, err := source.OpenContext(b.st, nc.spec.Dir, filepath.Join(nc.spec.Dir, "Dockerfile"))
		if err != nil {
			return nil, fmt.Errorf("--build-context %s: %w", nc.name, err)
		}
		nc.dir = c
	}
	return nil, nil
}

// namedSource is a named context as COPY --from and RUN --mount from= read it.
func (b *builder) namedSource(nc *namedCtx) (*origin, error) {
	img, err := b.loadNamed(context.Background(), nc, b.targetPlatform())
	if err != nil {
		return nil, err
	}
	if img == nil {
		return &origin{dir: nc.dir, key: cachekey.Of("named-dir", nc.spec.Dir)}, nil
	}
	return imageSource(img)
}

// errNamedDirBase is the error for FROM a local-directory named context.
var errNamedDirBase = errors.New("a local directory named context cannot be a FROM base in slimbuild yet (use it with COPY --from or RUN --mount=from=)")

// namedState is the state a named context gives a stage: an image's
// filesystem and config; a directory gives a state only --from can read.
func (b *builder) namedState(ctx context.Context, nc *namedCtx, stg *dockerfile.Stage) (*stageState, error) {
	img, err := b.loadNamed(ctx, nc, stagePlatform(stg))
	if err != nil {
		return nil, err
	}
	if img == nil {
		return &stageState{namedDir: true, key: cachekey.Of("named-dir", nc.spec.Dir)}, nil
	}
	s, err := imageState(img)
	if err != nil {
		return nil, fmt.Errorf("--build-context %s: %w", nc.name, err)
	}
	s.Begin(false, b.opts.SourceDateEpoch)
	s.Image.Config.Env = runtime.WithDefaultPath(s.Image.Config.Env)
	return s, nil
}
