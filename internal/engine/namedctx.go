package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/source"
	"github.com/slimbuild/slimbuild/internal/store"
)

// NamedContext is one --build-context value: exactly one of Dir, Image and
// Layout is set.
type NamedContext struct {
	// Dir is a local directory, read like the main context (its own
	// .dockerignore applies, as in BuildKit).
	Dir string
	// Image is the reference of docker-image://REF: from the store, else pulled.
	Image string
	// Layout is the directory of oci-layout://PATH[:TAG|@DIGEST]; LayoutTag
	// or LayoutDigest picks the image in its index.json (tag "latest" when
	// neither is given, as buildx does).
	Layout       string
	LayoutTag    string
	LayoutDigest string
}

// ParseNamedContext parses a --build-context flag, NAME=VALUE, as buildx does:
// VALUE is docker-image://REF, oci-layout://PATH[:TAG|@DIGEST] or a local
// directory. The name returned is normalized the way FROM and --from names are
// compared (contextName).
func ParseNamedContext(flag string) (string, NamedContext, error) {
	name, value, ok := strings.Cut(flag, "=")
	if !ok || name == "" || value == "" {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: want NAME=VALUE", flag)
	}
	key, err := contextName(name)
	if err != nil {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: invalid context name %q: %w", flag, name, err)
	}
	if strings.EqualFold(name, "scratch") || strings.EqualFold(name, "context") {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: the name %q is reserved", flag, name)
	}
	switch {
	case strings.HasPrefix(value, "docker-image://"):
		ref := strings.TrimPrefix(value, "docker-image://")
		if _, err := image.NormalizeName(ref); err != nil {
			return "", NamedContext{}, fmt.Errorf("--build-context %q: %w", flag, err)
		}
		return key, NamedContext{Image: ref}, nil
	case strings.HasPrefix(value, "oci-layout://"):
		p := strings.TrimPrefix(value, "oci-layout://")
		nc := NamedContext{}
		if loc, dig, found := strings.Cut(p, "@"); found {
			if _, err := v1.NewHash(dig); err != nil {
				return "", NamedContext{}, fmt.Errorf("--build-context %q: invalid digest %q: %w", flag, dig, err)
			}
			p, nc.LayoutDigest = loc, dig
		}
		if i := strings.LastIndex(p, ":"); i >= 0 && !strings.Contains(p[i:], "/") {
			p, nc.LayoutTag = p[:i], p[i+1:]
		}
		if nc.LayoutTag == "" && nc.LayoutDigest == "" {
			nc.LayoutTag = "latest"
		}
		if p == "" {
			return "", NamedContext{}, fmt.Errorf("--build-context %q: the OCI layout needs a path", flag)
		}
		nc.Layout = p
		return key, nc, nil
	case strings.Contains(value, "://") || strings.HasPrefix(value, "git@") || strings.HasPrefix(value, "target:"):
		return "", NamedContext{}, fmt.Errorf("--build-context %q: only a local directory, docker-image:// and oci-layout:// are supported", flag)
	}
	fi, err := os.Stat(value)
	if err != nil {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: %w", flag, err)
	}
	if !fi.IsDir() {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: %s is not a directory", flag, value)
	}
	abs, err := filepath.Abs(value)
	if err != nil {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: %w", flag, err)
	}
	return key, NamedContext{Dir: abs}, nil
}

// contextName is the form in which a named context, a FROM base and a --from
// name are compared: as BuildKit normalizes them, "alpine", "alpine:latest"
// and "docker.io/library/alpine" are the same name.
func contextName(ref string) (string, error) {
	return image.NormalizeName(ref)
}

// namedCtx is a named context being used by the build: what it resolves to
// is found on first use (an image once per platform).
type namedCtx struct {
	name string // as given in the Dockerfile, for errors
	spec NamedContext

	mu   sync.Mutex
	imgs map[string]v1.Image // Image or Layout, by platform
	dir  *source.Context     // Dir
}

// namedContext returns the named context that ref (a FROM base, a stage's
// name or a --from) names, nil when none does.
func (b *builder) namedContext(ref string) *namedCtx {
	if len(b.opts.NamedContexts) == 0 || strings.EqualFold(ref, "scratch") || strings.EqualFold(ref, "context") {
		return nil
	}
	key, err := contextName(ref)
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
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.spec.Dir != "" {
		if nc.dir == nil {
			c, err := source.OpenContext(b.st, nc.spec.Dir, filepath.Join(nc.spec.Dir, "Dockerfile"))
			if err != nil {
				return nil, fmt.Errorf("--build-context %s: %w", nc.name, err)
			}
			nc.dir = c
		}
		return nil, nil
	}
	if img, ok := nc.imgs[platformString(p)]; ok {
		return img, nil
	}
	var img v1.Image
	var err error
	if nc.spec.Image != "" {
		img, err = b.resolveImage(ctx, nc.spec.Image, p)
	} else {
		img, err = layoutImage(b.st, nc.spec, p)
	}
	if err != nil {
		return nil, fmt.Errorf("--build-context %s: %w", nc.name, err)
	}
	if nc.imgs == nil {
		nc.imgs = map[string]v1.Image{}
	}
	nc.imgs[platformString(p)] = img
	return img, nil
}

// namedSource is a named context as COPY --from and RUN --mount from= read it.
func (b *builder) namedSource(nc *namedCtx) (*origin, error) {
	img, err := b.loadNamed(context.Background(), nc, b.targetPlatform())
	if err != nil {
		return nil, err
	}
	if img == nil {
		return &origin{dir: nc.dir, key: keyOf("named-dir", nc.spec.Dir)}, nil
	}
	return imageSource(img)
}

// errNamedDirBase is the error for FROM a local-directory named context.
var errNamedDirBase = errors.New("a local directory named context cannot be a FROM base in slimbuild yet (use it with COPY --from or RUN --mount=from=)")

// layoutImage finds the image that spec names in its OCI layout, for
// platform p when the layout holds an index, and writes it into the store,
// so that the build reads it like any other image. Manifests and configs are
// size-checked before they are read.
func layoutImage(st *store.Store, spec NamedContext, p v1.Platform) (v1.Image, error) {
	fi, err := os.Stat(filepath.Join(spec.Layout, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", spec.Layout, err)
	}
	if fi.Size() > store.MaxManifestSize {
		return nil, fmt.Errorf("OCI layout %s: index.json of %d bytes: %w", spec.Layout, fi.Size(), store.ErrTooLarge)
	}
	idx, err := layout.ImageIndexFromPath(spec.Layout)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", spec.Layout, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", spec.Layout, err)
	}
	var found *v1.Descriptor
	for i, d := range im.Manifests {
		if (spec.LayoutDigest != "" && d.Digest.String() == spec.LayoutDigest) ||
			(spec.LayoutDigest == "" && d.Annotations["org.opencontainers.image.ref.name"] == spec.LayoutTag) {
			found = &im.Manifests[i]
			break
		}
	}
	if found == nil {
		want := spec.LayoutDigest
		if want == "" {
			want = "tag " + spec.LayoutTag
		}
		return nil, fmt.Errorf("OCI layout %s has no image %s", spec.Layout, want)
	}
	img, err := layoutPick(idx, *found, p, 0)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", spec.Layout, err)
	}
	h, err := st.WriteImage(img)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", spec.Layout, err)
	}
	return st.Image(h.String())
}

// layoutPick opens the image d names in idx, descending into nested indexes
// for platform p.
func layoutPick(idx v1.ImageIndex, d v1.Descriptor, p v1.Platform, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("indexes nested too deep")
	}
	if d.Size > store.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s of %d bytes: %w", d.Digest, d.Size, store.ErrTooLarge)
	}
	switch {
	case d.MediaType.IsImage():
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		if m.Config.Size > store.MaxConfigSize {
			return nil, fmt.Errorf("config %s of %d bytes: %w", m.Config.Digest, m.Config.Size, store.ErrTooLarge)
		}
		return img, nil
	case d.MediaType.IsIndex():
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, c := range cm.Manifests {
			if c.Platform != nil && c.Platform.Satisfies(p) {
				return layoutPick(child, c, p, depth+1)
			}
		}
		return nil, fmt.Errorf("index %s has no image for %s/%s", d.Digest, p.OS, p.Architecture)
	}
	return nil, fmt.Errorf("manifest %s has unsupported media type %s", d.Digest, d.MediaType)
}

// namedState is the state a named context gives a stage: an image's
// filesystem and config; a directory gives a state only --from can read.
func (b *builder) namedState(ctx context.Context, nc *namedCtx, stg *dockerfile.Stage) (*stageState, error) {
	img, err := b.loadNamed(ctx, nc, stagePlatform(stg))
	if err != nil {
		return nil, err
	}
	if img == nil {
		return &stageState{namedDir: true, key: keyOf("named-dir", nc.spec.Dir)}, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("--build-context %s: reading config: %w", nc.name, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("--build-context %s: reading layers: %w", nc.name, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	s := &stageState{layers: layers, cfg: *cf.DeepCopy(), key: keyOf("image", d.String()), created: cf.Created.Time}
	s.cfg.Config.Env = runtime.WithDefaultPath(s.cfg.Config.Env)
	s.epoch = b.opts.SourceDateEpoch
	s.args = map[string]string{}
	return s, nil
}
