package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// stateImage is a stage state as a v1.Image, without writing anything.
type stateImage struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]v1.Layer
}

var _ partial.CompressedImageCore = (*stateImage)(nil)

func (i *stateImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *stateImage) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}
func (i *stateImage) RawManifest() ([]byte, error) { return i.manifest, nil }
func (i *stateImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s is not part of the image", h)
}

// imageOf builds the manifest and config of a state.
func imageOf(s *stageState) (*stateImage, error) {
	cfg := *s.cfg.DeepCopy()
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = nil
	if cfg.Architecture == "" {
		cfg.Architecture = goarch()
	}
	if cfg.OS == "" {
		cfg.OS = "linux"
	}
	img := &stateImage{layers: map[v1.Hash]v1.Layer{}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, l := range s.layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: size, Digest: d})
		img.layers[d] = l
	}
	if s.epoch != nil {
		cfg.Created = v1.Time{Time: s.epoch.UTC()}
	} else if !s.created.IsZero() {
		cfg.Created = v1.Time{Time: s.created.UTC()}
	} else {
		cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cd, size, err := v1.SHA256(bytesReader(cfgBytes))
	if err != nil {
		return nil, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: size, Digest: cd}
	mBytes, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	img.manifest, img.config = mBytes, cfgBytes
	return img, nil
}

func (b *builder) stageImage(s *stageState) (v1.Image, error) {
	si, err := imageOf(s)
	if err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(si)
	if err != nil {
		return nil, err
	}
	return &stageImage{Image: img, layers: append([]v1.Layer(nil), s.layers...)}, nil
}

// stageImage hands out the state's own layers (the store's), not partial's wrappers.
type stageImage struct {
	v1.Image
	layers []v1.Layer
}

func (i *stageImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

// assemble writes the target state's config and manifest to the store (its layers
// are there already, or are fetched from the shared cache now) and returns the
// stored image.
func (b *builder) assemble(s *stageState) (v1.Hash, v1.Image, error) {
	if err := fetchLayers(s.layers); err != nil {
		return v1.Hash{}, nil, err
	}
	if err := b.materializeAll(s.layers); err != nil {
		return v1.Hash{}, nil, err
	}
	if len(b.opts.Labels) > 0 {
		// The command line's labels come after the Dockerfile's, as in buildx.
		final := s.clone()
		if final.cfg.Config.Labels == nil {
			final.cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.opts.Labels {
			final.cfg.Config.Labels[k] = v
		}
		s = final
	}
	si, err := imageOf(s)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	if len(b.opts.Annotations) > 0 {
		var m v1.Manifest
		if err := json.Unmarshal(si.manifest, &m); err != nil {
			return v1.Hash{}, nil, err
		}
		m.Annotations = maps.Clone(b.opts.Annotations)
		if si.manifest, err = json.Marshal(m); err != nil {
			return v1.Hash{}, nil, err
		}
	}
	if _, _, err := b.st.WriteBlob(si.config); err != nil {
		return v1.Hash{}, nil, fmt.Errorf("writing config: %w", err)
	}
	d, _, err := b.st.WriteBlob(si.manifest)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("writing manifest: %w", err)
	}
	img, err := b.st.Image(d.String())
	if err != nil {
		return v1.Hash{}, nil, err
	}
	return d, img, nil
}

// lazyImage is an image made the first time one of its methods is called.
type lazyImage struct {
	make func() (v1.Image, error)
	once sync.Once
	img  v1.Image
	err  error
}

var _ v1.Image = (*lazyImage)(nil)

func (i *lazyImage) get() (v1.Image, error) {
	i.once.Do(func() { i.img, i.err = i.make() })
	return i.img, i.err
}

func (i *lazyImage) Layers() ([]v1.Layer, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.Layers()
}

func (i *lazyImage) MediaType() (types.MediaType, error) {
	img, err := i.get()
	if err != nil {
		return "", err
	}
	return img.MediaType()
}

func (i *lazyImage) Size() (int64, error) {
	img, err := i.get()
	if err != nil {
		return 0, err
	}
	return img.Size()
}

func (i *lazyImage) ConfigName() (v1.Hash, error) {
	img, err := i.get()
	if err != nil {
		return v1.Hash{}, err
	}
	return img.ConfigName()
}

func (i *lazyImage) ConfigFile() (*v1.ConfigFile, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.ConfigFile()
}

func (i *lazyImage) RawConfigFile() ([]byte, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.RawConfigFile()
}

func (i *lazyImage) Digest() (v1.Hash, error) {
	img, err := i.get()
	if err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

func (i *lazyImage) Manifest() (*v1.Manifest, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.Manifest()
}

func (i *lazyImage) RawManifest() ([]byte, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.RawManifest()
}

func (i *lazyImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.LayerByDigest(h)
}

func (i *lazyImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	img, err := i.get()
	if err != nil {
		return nil, err
	}
	return img.LayerByDiffID(h)
}
