package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Compressed returns img with its layers compressed as c says, for an output
// that ships them (a push, an OCI layout or archive). Layers whose media type
// already is c's are kept as they are; the others (an uncompressed layer
// from an import, a zstd layer when gzip is asked for) are decompressed and
// compressed again with the store's one compressor at its fixed level
// (store.NewLayerWriter), so the same tar always gives the same blob: an
// image pushed or exported is byte-identical whichever way its layers were
// first stored. Each converted blob is written to st once and remembered in
// its build cache (which keeps it from GC), so the next output reuses it.
//
// When no layer needs converting, img itself is returned and its manifest
// (and digest) are untouched; otherwise the manifest is img's with those
// layer descriptors replaced, and has a new digest.
func Compressed(ctx context.Context, st *store.Store, img v1.Image, c store.Compression) (v1.Image, error) {
	if c == "" {
		c = store.Gzip
	}
	if _, err := c.MediaType(); err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config lists %d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	docker := m.MediaType == types.DockerManifestSchema2
	m = m.DeepCopy()
	swapped := map[v1.Hash]v1.Layer{}
	for k, d := range m.Layers {
		if !d.MediaType.IsDistributable() || compressionOf(d.MediaType) == c {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		info, err := convertLayer(ctx, st, l, cf.RootFS.DiffIDs[k], c)
		if err != nil {
			return nil, fmt.Errorf("compressing layer %s with %s: %w", cf.RootFS.DiffIDs[k], c, err)
		}
		if docker && c == store.Gzip {
			info.MediaType = types.DockerLayer
		}
		nl, err := st.Layer(info)
		if err != nil {
			return nil, err
		}
		m.Layers[k].MediaType, m.Layers[k].Digest, m.Layers[k].Size = info.MediaType, info.Digest, info.Size
		swapped[info.Digest] = nl
	}
	if len(swapped) == 0 {
		return img, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&convertedImage{base: img, raw: raw, layers: swapped})
}

// compressionOf is the compression a layer media type stands for ("" for
// media types that are not layers).
func compressionOf(mt types.MediaType) store.Compression {
	switch mt {
	case types.OCILayer, types.DockerLayer, types.OCIRestrictedLayer:
		return store.Gzip
	case types.OCILayerZStd:
		return store.Zstd
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return store.None
	}
	return ""
}

// convertLayer stores l's tar compressed with c (or finds it stored by an
// earlier call) and checks that it is the tar of diffID.
func convertLayer(ctx context.Context, st *store.Store, l v1.Layer, diffID v1.Hash, c store.Compression) (store.LayerInfo, error) {
	sum := sha256.Sum256([]byte("compressed layer\x00" + string(c) + "\x00" + diffID.String()))
	key := hex.EncodeToString(sum[:])
	if b, err := st.GetCache(key); err == nil {
		var info store.LayerInfo
		if json.Unmarshal(b, &info) == nil && info.DiffID == diffID && st.HasBlob(info.Digest) {
			return info, nil
		}
	}
	lw, err := st.NewLayerWriter(c)
	if err != nil {
		return store.LayerInfo{}, err
	}
	defer lw.Abort()
	rc, err := l.Uncompressed()
	if err != nil {
		return store.LayerInfo{}, err
	}
	defer rc.Close()
	if _, err := io.Copy(&ctxWriter{ctx: ctx, w: lw}, rc); err != nil {
		return store.LayerInfo{}, err
	}
	info, err := lw.Commit()
	if err != nil {
		return store.LayerInfo{}, err
	}
	if info.DiffID != diffID {
		return store.LayerInfo{}, fmt.Errorf("stored layer has diffID %s", info.DiffID)
	}
	b, err := json.Marshal(info)
	if err != nil {
		return store.LayerInfo{}, err
	}
	if err := st.PutCache(key, b); err != nil {
		return store.LayerInfo{}, err
	}
	return info, nil
}

// convertedImage is an image with some layers swapped for converted ones.
type convertedImage struct {
	base   v1.Image
	raw    []byte
	layers map[v1.Hash]v1.Layer
}

var _ partial.CompressedImageCore = (*convertedImage)(nil)

func (i *convertedImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *convertedImage) RawConfigFile() ([]byte, error)      { return i.base.RawConfigFile() }
func (i *convertedImage) MediaType() (types.MediaType, error) { return i.base.MediaType() }

func (i *convertedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	return i.base.LayerByDigest(h)
}
