package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A name may point at an image index (a multi-platform image, as a build for
// several platforms or an import with a platform makes): Image picks the host's
// manifest from it, ImageFor any platform's, and Index returns it whole.

// ErrNoPlatform is wrapped by the error of ImageFor when the name has no image
// for the platform asked for.
var ErrNoPlatform = errors.New("no image for the platform")

// HostPlatform is the platform Image picks from an index: linux and the
// host's architecture.
func HostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: goruntime.GOARCH} }

// describe resolves a normalised name or "sha256:HEX" to its descriptor.
func (s *Store) describe(nameOrDigest string) (v1.Descriptor, error) {
	if strings.HasPrefix(nameOrDigest, "sha256:") {
		h, err := v1.NewHash(nameOrDigest)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("image %q: %w", nameOrDigest, err)
		}
		d, err := s.manifestDescriptor(h)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("image %q: %w", nameOrDigest, err)
		}
		return d, nil
	}
	return s.lookup(nameOrDigest)
}

// readIndexBlob reads the stored index h, bounded by MaxManifestSize.
func (s *Store) readIndexBlob(h v1.Hash) (*v1.IndexManifest, []byte, error) {
	b, err := ReadLimited(s.BlobPath(h), MaxManifestSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("index %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", h, err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing index %s: %w", h, err)
	}
	return im, b, nil
}

// pick returns the image manifest of im for p (nested indexes are not followed:
// slimbuild writes none).
func pick(im *v1.IndexManifest, p v1.Platform) (v1.Descriptor, bool) {
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil && d.Platform.Satisfies(p) {
			return d, true
		}
	}
	return v1.Descriptor{}, false
}

func platformsOf(im *v1.IndexManifest) string {
	var out []string
	for _, d := range im.Manifests {
		if d.Platform != nil {
			out = append(out, d.Platform.String())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// ImageFor returns the image nameOrDigest names for platform p: from an index,
// its manifest for p; an image, when its config is for p (or names no platform).
// The error for a missing platform wraps ErrNoPlatform and ErrNotFound.
func (s *Store) ImageFor(nameOrDigest string, p v1.Platform) (v1.Image, error) {
	desc, err := s.describe(nameOrDigest)
	if err != nil {
		return nil, err
	}
	return s.imageFor(nameOrDigest, desc, p)
}

func (s *Store) imageFor(nameOrDigest string, desc v1.Descriptor, p v1.Platform) (v1.Image, error) {
	if desc.MediaType.IsIndex() {
		im, _, err := s.readIndexBlob(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
		}
		d, ok := pick(im, p)
		if !ok {
			return nil, fmt.Errorf("image %q holds %s: %w %s (%w)", nameOrDigest, platformsOf(im), ErrNoPlatform, p.String(), ErrNotFound)
		}
		return s.Image(d.Digest.String())
	}
	img, err := s.Image(desc.Digest.String())
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %q: reading config: %w", nameOrDigest, err)
	}
	if cf.Architecture != "" {
		have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if have.OS == "" {
			have.OS = "linux" // as slimbuild runs every image
		}
		if !have.Satisfies(p) {
			return nil, fmt.Errorf("image %q is for %s: %w %s (%w)", nameOrDigest, have.String(), ErrNoPlatform, p.String(), ErrNotFound)
		}
	}
	return img, nil
}

// PlatformOf is the platform an image's config names.
func PlatformOf(img v1.Image) (v1.Platform, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Platform{}, err
	}
	return v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion}, nil
}

// WriteIndex stores an OCI image index of the stored image manifests, each
// described with the platform of its config, in the order given, and returns
// its digest. It does not name the index; see Tag.
func (s *Store) WriteIndex(manifests []v1.Hash, annotations map[string]string) (v1.Hash, error) {
	im := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}, Annotations: annotations}
	seen := map[string]bool{}
	for _, h := range manifests {
		d, err := s.manifestDescriptor(h)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("writing index: %w", err)
		}
		if !d.MediaType.IsImage() {
			return v1.Hash{}, fmt.Errorf("writing index: %s is a %s, not an image manifest", h, d.MediaType)
		}
		img, err := s.Image(h.String())
		if err != nil {
			return v1.Hash{}, fmt.Errorf("writing index: %w", err)
		}
		p, err := PlatformOf(img)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("writing index: config of %s: %w", h, err)
		}
		if seen[p.String()] {
			return v1.Hash{}, fmt.Errorf("writing index: two images for %s", p.String())
		}
		seen[p.String()] = true
		d.Platform = &p
		im.Manifests = append(im.Manifests, d)
	}
	b, err := json.Marshal(im)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := s.WriteBlob(b)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing index: %w", err)
	}
	return h, nil
}

// AddPlatform stores the image manifest h as name's image for the platform of
// its config: name becomes an index that keeps its manifests for the other
// platforms (an image name is taken as the index of its one platform). It
// returns the new index's digest.
func (s *Store) AddPlatform(name string, h v1.Hash) (v1.Hash, error) {
	img, err := s.Image(h.String())
	if err != nil {
		return v1.Hash{}, err
	}
	p, err := PlatformOf(img)
	if err != nil {
		return v1.Hash{}, err
	}
	var keep []v1.Hash
	if desc, err := s.lookup(name); err == nil {
		var others []v1.Descriptor
		if desc.MediaType.IsIndex() {
			im, _, err := s.readIndexBlob(desc.Digest)
			if err != nil {
				return v1.Hash{}, fmt.Errorf("image %q: %w", name, err)
			}
			others = im.Manifests
		} else if old, err := s.Image(desc.Digest.String()); err == nil {
			op, err := PlatformOf(old)
			if err != nil {
				return v1.Hash{}, err
			}
			others = []v1.Descriptor{{MediaType: desc.MediaType, Digest: desc.Digest, Platform: &op}}
		}
		for _, d := range others {
			if d.MediaType.IsImage() && d.Platform != nil && d.Platform.String() != p.String() {
				keep = append(keep, d.Digest)
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return v1.Hash{}, err
	}
	ih, err := s.WriteIndex(append(keep, h), nil)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := s.Tag(name, ih); err != nil {
		return v1.Hash{}, err
	}
	return ih, nil
}

// storeIndex is a v1.ImageIndex over an index in the store.
type storeIndex struct {
	s    *Store
	desc v1.Descriptor
	raw  []byte
	im   *v1.IndexManifest
}

var _ v1.ImageIndex = (*storeIndex)(nil)

func (i *storeIndex) MediaType() (types.MediaType, error)       { return i.desc.MediaType, nil }
func (i *storeIndex) Digest() (v1.Hash, error)                  { return i.desc.Digest, nil }
func (i *storeIndex) Size() (int64, error)                      { return int64(len(i.raw)), nil }
func (i *storeIndex) IndexManifest() (*v1.IndexManifest, error) { return i.im.DeepCopy(), nil }
func (i *storeIndex) RawManifest() ([]byte, error)              { return i.raw, nil }
func (i *storeIndex) Image(h v1.Hash) (v1.Image, error)         { return i.s.Image(h.String()) }
func (i *storeIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return i.s.Index(h.String())
}

// Index returns the stored index by normalised name or digest.
func (s *Store) Index(nameOrDigest string) (v1.ImageIndex, error) {
	desc, err := s.describe(nameOrDigest)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("image %q: manifest %s has media type %s, not an index", nameOrDigest, desc.Digest, desc.MediaType)
	}
	if err := s.hold(desc.Digest); err != nil {
		return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
	}
	im, raw, err := s.readIndexBlob(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
	}
	return &storeIndex{s: s, desc: desc, raw: raw, im: im}, nil
}

// IsIndex reports whether nameOrDigest names an index.
func (s *Store) IsIndex(nameOrDigest string) (bool, error) {
	desc, err := s.describe(nameOrDigest)
	if err != nil {
		return false, err
	}
	return desc.MediaType.IsIndex(), nil
}
