package regcache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/image"
)

// Export writes steps as the cache at ref, replacing what ref held, and returns
// the digest of the cache manifest. Each step with a layer needs its Blob. When two
// steps share a key, the later one wins.
func Export(ctx context.Context, reg *image.Registry, ref string, steps []Step) (v1.Hash, error) {
	r, err := reg.Ref(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("cache %s: %w", ref, err)
	}
	art, err := newArtifact(steps)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("cache %s: %w", ref, err)
	}
	img, err := partial.CompressedToImage(art)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("cache %s: %w", ref, err)
	}
	ai := &artifactImage{Image: img, art: art}
	if err := remote.Write(r, ai, reg.Options(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("writing cache %s: %w", ref, image.Explain(r.Context().RegistryStr(), err))
	}
	return ai.Digest()
}

// artifact is the cache manifest, its config and its blobs.
type artifact struct {
	manifest, config []byte
	configDigest     v1.Hash
	blobs            map[v1.Hash]v1.Layer
	order            []v1.Hash
}

var _ partial.CompressedImageCore = (*artifact)(nil)

func newArtifact(steps []Step) (*artifact, error) {
	cfg := config{Version: Version, Steps: map[string]*Step{}}
	a := &artifact{blobs: map[v1.Hash]v1.Layer{}}
	for i := range steps {
		s := steps[i]
		if !validKey(s.Key) {
			return nil, fmt.Errorf("step key %q is not 64 lowercase hex characters", s.Key)
		}
		cfg.Steps[s.Key] = &s
	}
	keys := make([]string, 0, len(cfg.Steps))
	for k := range cfg.Steps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType}
	for _, k := range keys {
		s := cfg.Steps[k]
		if s.Layer == nil {
			continue
		}
		if s.Blob == nil {
			return nil, fmt.Errorf("step %s: layer %s has no blob to export", k, s.Layer.Digest)
		}
		if d, err := s.Blob.Digest(); err != nil || d != s.Layer.Digest {
			return nil, fmt.Errorf("step %s: blob has digest %s, the step says %s (%v)", k, d, s.Layer.Digest, err)
		}
		if _, ok := a.blobs[s.Layer.Digest]; ok {
			continue
		}
		a.blobs[s.Layer.Digest] = s.Blob
		a.order = append(a.order, s.Layer.Digest)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: s.Layer.MediaType, Size: s.Layer.Size, Digest: s.Layer.Digest})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cd, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	m.Config = v1.Descriptor{MediaType: ConfigMediaType, Size: size, Digest: cd}
	man, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	a.manifest, a.config, a.configDigest = man, raw, cd
	return a, nil
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.configDigest {
		return &configBlob{raw: a.config, digest: h}, nil
	}
	if l, ok := a.blobs[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("blob %s is not part of the cache", h)
}

// artifactImage hands out the blobs themselves, so that remote.Write sees which
// ones it can mount from another repository.
type artifactImage struct {
	v1.Image
	art *artifact
}

func (i *artifactImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, 0, len(i.art.order))
	for _, d := range i.art.order {
		out = append(out, i.art.blobs[d])
	}
	return out, nil
}

// configBlob is the config as a blob to upload.
type configBlob struct {
	raw    []byte
	digest v1.Hash
}

func (c *configBlob) Digest() (v1.Hash, error) { return c.digest, nil }
func (c *configBlob) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c.raw)), nil
}
func (c *configBlob) Size() (int64, error)                { return int64(len(c.raw)), nil }
func (c *configBlob) MediaType() (types.MediaType, error) { return ConfigMediaType, nil }
