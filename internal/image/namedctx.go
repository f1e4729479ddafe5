package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

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
// compared (NormalizeName).
func ParseNamedContext(flag string) (string, NamedContext, error) {
	name, value, ok := strings.Cut(flag, "=")
	if !ok || name == "" || value == "" {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: want NAME=VALUE", flag)
	}
	key, err := NormalizeName(name)
	if err != nil {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: invalid context name %q: %w", flag, name, err)
	}
	if strings.EqualFold(name, "scratch") || strings.EqualFold(name, "context") {
		return "", NamedContext{}, fmt.Errorf("--build-context %q: the name %q is reserved", flag, name)
	}
	switch {
	case strings.HasPrefix(value, "docker-image://"):
		ref := strings.TrimPrefix(value, "docker-image://")
		if _, err := NormalizeName(ref); err != nil {
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

// LayoutImage finds the image tagged tag, or of digest dig when dig is not
// empty, in the OCI layout at dir (for platform p when that is an index), and
// writes it into the store, so that a build reads it like any other image.
// Manifests and configs are size-checked before they are read.
func LayoutImage(st *store.Store, dir, tag, dig string, p v1.Platform) (v1.Image, error) {
	spec := NamedContext{Layout: dir, LayoutTag: tag, LayoutDigest: dig}
	if err := checkLayout(spec.Layout); err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", spec.Layout, err)
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
