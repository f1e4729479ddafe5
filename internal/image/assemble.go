package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Assemble is the image of cfg over layers (bottom first), made in memory and
// written nowhere. Its config is cfg with RootFS set from the layers' diffIDs,
// OS and architecture defaulted to linux and the host's when empty; its
// manifest is an OCI manifest with annotations (none when empty). Assemble asks
// every layer for its digest, diffID, size and media type (a layer whose blob is
// made on demand makes it now) and reads no layer content. The image's Layers
// are the layers given, not wrappers.
//
// This is the one image assembler: the engine, slim and import make their
// images with it, so that the same config and layers give the same bytes,
// whoever assembles them (reproducible digests and build cache keys rely on it).
func Assemble(cfg *v1.ConfigFile, layers []v1.Layer, annotations map[string]string) (v1.Image, error) {
	c := cfg.DeepCopy()
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = nil
	if c.Architecture == "" {
		c.Architecture = runtime.GOARCH
	}
	if c.OS == "" {
		c.OS = "linux"
	}
	descs, err := describe(layers)
	if err != nil {
		return nil, err
	}
	for _, d := range descs {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, d.diffID)
	}
	cfgBytes, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding image config: %w", err)
	}
	return assemble(cfgBytes, layers, descs, annotations)
}

// AssembleConfig is Assemble for a config given as bytes, which it keeps as
// they are (an imported image's config: its digest is the image's identity in
// docker's tools). The config's diffIDs must be the layers'.
func AssembleConfig(config []byte, layers []v1.Layer) (v1.Image, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	descs, err := describe(layers)
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(descs) {
		return nil, fmt.Errorf("image config lists %d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(descs))
	}
	for k, d := range descs {
		if cf.RootFS.DiffIDs[k] != d.diffID {
			return nil, fmt.Errorf("image config lists diffID %s for layer %d, which is %s", cf.RootFS.DiffIDs[k], k+1, d.diffID)
		}
	}
	return assemble(config, layers, descs, nil)
}

// layerDesc is what a manifest and a config say of a layer.
type layerDesc struct {
	v1.Descriptor
	diffID v1.Hash
}

// describe asks each layer for its digest, diffID, size and media type.
func describe(layers []v1.Layer) ([]layerDesc, error) {
	out := make([]layerDesc, 0, len(layers))
	for _, l := range layers {
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
		out = append(out, layerDesc{Descriptor: v1.Descriptor{MediaType: mt, Size: size, Digest: d}, diffID: diffID})
	}
	return out, nil
}

// assemble is the image of the config bytes over layers, described by descs.
func assemble(cfgBytes []byte, layers []v1.Layer, descs []layerDesc, annotations map[string]string) (v1.Image, error) {
	core := &assembled{layers: map[v1.Hash]v1.Layer{}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for k, d := range descs {
		m.Layers = append(m.Layers, d.Descriptor)
		core.layers[d.Digest] = layers[k]
	}
	cd, size, err := v1.SHA256(bytes.NewReader(cfgBytes))
	if err != nil {
		return nil, err
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: size, Digest: cd}
	if len(annotations) > 0 {
		m.Annotations = maps.Clone(annotations)
	}
	mBytes, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding image manifest: %w", err)
	}
	core.manifest, core.config = mBytes, cfgBytes
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	return &assembledImage{Image: img, layers: slices.Clone(layers)}, nil
}

// assembled is an assembled image's manifest, config and layers.
type assembled struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]v1.Layer
}

var _ partial.CompressedImageCore = (*assembled)(nil)

func (i *assembled) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *assembled) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *assembled) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *assembled) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s is not part of the image", h)
}

// assembledImage hands out the layers it was assembled from, not partial's wrappers.
type assembledImage struct {
	v1.Image
	layers []v1.Layer
}

func (i *assembledImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

// ManifestStore is what StoreManifest needs of a store.
type ManifestStore interface {
	WriteBlob(data []byte) (v1.Hash, int64, error)
	Image(nameOrDigest string) (v1.Image, error)
}

var _ ManifestStore = (*store.Store)(nil)

// StoreManifest writes the config and manifest of img (assembled over layers
// the store holds already) into st and returns the stored image and its digest.
func StoreManifest(st ManifestStore, img v1.Image) (v1.Hash, v1.Image, error) {
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	man, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, nil, err
	}
	if _, _, err := st.WriteBlob(cfg); err != nil {
		return v1.Hash{}, nil, fmt.Errorf("writing config: %w", err)
	}
	d, _, err := st.WriteBlob(man)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("writing manifest: %w", err)
	}
	stored, err := st.Image(d.String())
	if err != nil {
		return v1.Hash{}, nil, err
	}
	return d, stored, nil
}

// Lazy is the image make returns, made the first time one of its methods is
// called (once: its error, if any, is every method's).
func Lazy(make func() (v1.Image, error)) v1.Image { return &lazyImage{make: make} }

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
