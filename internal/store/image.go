package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// blobLayer is a v1.Layer backed by a blob file in the store. Its digest, size, media
// type and (when known) diffID come from metadata and are never recomputed.
type blobLayer struct {
	s         *Store
	digest    v1.Hash
	diffID    v1.Hash // zero when unknown
	size      int64
	mediaType types.MediaType

	once    sync.Once
	diffErr error
}

var _ v1.Layer = (*blobLayer)(nil)

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *blobLayer) Descriptor() (*v1.Descriptor, error) {
	return &v1.Descriptor{MediaType: l.mediaType, Size: l.size, Digest: l.digest}, nil
}

func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.s.BlobPath(l.digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", l.digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening blob %s: %w", l.digest, err)
	}
	return f, nil
}

func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	if !l.mediaType.IsLayer() {
		return f, nil // config and other plain blobs
	}
	d, err := layer.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("decompressing blob %s: %w", l.digest, err)
	}
	return &closeBoth{ReadCloser: d, under: f}, nil
}

type closeBoth struct {
	io.ReadCloser
	under io.Closer
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if err2 := c.under.Close(); err == nil {
		err = err2
	}
	return err
}

func (l *blobLayer) DiffID() (v1.Hash, error) {
	if l.diffID != (v1.Hash{}) {
		return l.diffID, nil
	}
	l.once.Do(func() {
		rc, err := l.Uncompressed()
		if err != nil {
			l.diffErr = err
			return
		}
		defer rc.Close()
		h, _, err := v1.SHA256(rc)
		if err != nil {
			l.diffErr = fmt.Errorf("hashing blob %s: %w", l.digest, err)
			return
		}
		l.diffID = h
	})
	return l.diffID, l.diffErr
}

// Layer returns a v1.Layer backed by a stored blob.
func (s *Store) Layer(info LayerInfo) (v1.Layer, error) {
	if err := s.hold(info.Digest, info.DiffID); err != nil {
		return nil, fmt.Errorf("layer %s: %w", info.Digest, err)
	}
	if !s.HasBlob(info.Digest) {
		return nil, fmt.Errorf("layer %s: %w", info.Digest, ErrNotFound)
	}
	return &blobLayer{s: s, digest: info.Digest, diffID: info.DiffID, size: info.Size, mediaType: info.MediaType}, nil
}

// storeImage is a partial.CompressedImageCore over a manifest in the store.
type storeImage struct {
	s        *Store
	desc     v1.Descriptor
	manifest []byte

	mu      sync.Mutex
	diffIDs map[v1.Hash]v1.Hash // layer digest -> diffID, from the config
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

func (i *storeImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *storeImage) parsedManifest() (*v1.Manifest, error) {
	m, err := v1.ParseManifest(strings.NewReader(string(i.manifest)))
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", i.desc.Digest, err)
	}
	return m, nil
}

func (i *storeImage) RawConfigFile() ([]byte, error) {
	m, err := i.parsedManifest()
	if err != nil {
		return nil, err
	}
	b, err := ReadLimited(i.s.BlobPath(m.Config.Digest), MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("reading config %s of %s: %w", m.Config.Digest, i.desc.Digest, err)
	}
	return b, nil
}

// The largest image manifest (or index) and config slimbuild reads, as
// registries and containerd bound them: larger ones are an error wrapping
// ErrTooLarge, never read whole into memory.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
)

// ErrTooLarge is wrapped by the error of a manifest or config over its limit.
var ErrTooLarge = errors.New("larger than the limit")

// ReadLimited reads the file p, which must hold at most limit bytes.
func ReadLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w of %d bytes", p, ErrTooLarge, limit)
	}
	return b, nil
}

// diffIDOf maps a layer digest to the diffID the config records for it.
func (i *storeImage) diffIDOf(h v1.Hash) v1.Hash {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.diffIDs == nil {
		i.diffIDs = map[v1.Hash]v1.Hash{}
		m, err := i.parsedManifest()
		if err != nil {
			return v1.Hash{}
		}
		raw, err := i.RawConfigFile()
		if err != nil {
			return v1.Hash{}
		}
		var cf struct {
			RootFS struct {
				DiffIDs []v1.Hash `json:"diff_ids"`
			} `json:"rootfs"`
		}
		if json.Unmarshal(raw, &cf) != nil || len(cf.RootFS.DiffIDs) != len(m.Layers) {
			return v1.Hash{}
		}
		for k, l := range m.Layers {
			i.diffIDs[l.Digest] = cf.RootFS.DiffIDs[k]
		}
	}
	return i.diffIDs[h]
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := i.parsedManifest()
	if err != nil {
		return nil, err
	}
	if h == m.Config.Digest {
		return &blobLayer{s: i.s, digest: h, diffID: h, size: m.Config.Size, mediaType: m.Config.MediaType}, nil
	}
	for _, d := range m.Layers {
		if d.Digest == h {
			return &blobLayer{s: i.s, digest: h, diffID: i.diffIDOf(h), size: d.Size, mediaType: d.MediaType}, nil
		}
	}
	return nil, fmt.Errorf("layer %s in image %s: %w", h, i.desc.Digest, ErrNotFound)
}

// Image returns the stored image by normalised name or by manifest digest
// ("sha256:HEX"); for an index, its image for HostPlatform.
func (s *Store) Image(nameOrDigest string) (v1.Image, error) {
	var desc v1.Descriptor
	if strings.HasPrefix(nameOrDigest, "sha256:") {
		h, err := v1.NewHash(nameOrDigest)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
		}
		if desc, err = s.manifestDescriptor(h); err != nil {
			return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
		}
	} else {
		var err error
		if desc, err = s.lookup(nameOrDigest); err != nil {
			return nil, err
		}
	}
	if desc.MediaType.IsIndex() {
		// A multi-platform name: the host's image (see platform.go).
		return s.imageFor(nameOrDigest, desc, HostPlatform())
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("image %q: manifest %s has media type %s, not an image", nameOrDigest, desc.Digest, desc.MediaType)
	}
	// GC keeps the manifest's config, layers and unpacked dirs with it.
	if err := s.hold(desc.Digest); err != nil {
		return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
	}
	b, err := ReadLimited(s.BlobPath(desc.Digest), MaxManifestSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %q: manifest %s: %w", nameOrDigest, desc.Digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", nameOrDigest, err)
	}
	core := &storeImage{s: s, desc: desc, manifest: b}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	return &layeredImage{Image: img, core: core}, nil
}

// layeredImage hands out the store's own layers, whose Uncompressed streams use the
// project's parallel decompressor and whose DiffIDs come from the config, rather than
// partial's generic wrappers.
type layeredImage struct {
	v1.Image
	core *storeImage
}

func (i *layeredImage) Layers() ([]v1.Layer, error) {
	m, err := i.core.parsedManifest()
	if err != nil {
		return nil, err
	}
	ls := make([]v1.Layer, 0, len(m.Layers))
	for _, d := range m.Layers {
		l, err := i.LayerByDigest(d.Digest)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func (i *layeredImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	cl, err := i.core.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return cl.(*blobLayer), nil
}

// WriteImage writes every blob of img the store lacks (layers streamed from
// Compressed and checked against their digests), then its config and manifest, and
// returns the manifest digest. It does not name the image; see Tag.
func (s *Store) WriteImage(img v1.Image) (v1.Hash, error) {
	dig, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	}
	if raw, err := img.RawManifest(); err == nil && len(raw) > MaxManifestSize {
		return v1.Hash{}, fmt.Errorf("writing image %s: manifest of %d bytes: %w of %d bytes", dig, len(raw), ErrTooLarge, MaxManifestSize)
	}
	if m.Config.Size > MaxConfigSize {
		return v1.Hash{}, fmt.Errorf("writing image %s: config of %d bytes: %w of %d bytes", dig, m.Config.Size, ErrTooLarge, MaxConfigSize)
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	}
	keep := []v1.Hash{dig, m.Config.Digest}
	for _, d := range m.Layers {
		keep = append(keep, d.Digest)
	}
	if err := s.hold(keep...); err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 3)
		mu   sync.Mutex
		errs []error
	)
	for k, l := range layers {
		if k < len(m.Layers) && !m.Layers[k].MediaType.IsDistributable() {
			continue // foreign layer: referenced, never stored
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.writeLayer(l); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: config: %w", dig, err)
	}
	if h, _, err := s.WriteBlob(rawCfg); err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	} else if h != m.Config.Digest {
		return v1.Hash{}, fmt.Errorf("writing image %s: config has digest %s, manifest says %s", dig, h, m.Config.Digest)
	}
	rawMan, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: manifest: %w", dig, err)
	}
	h, _, err := s.WriteBlob(rawMan)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing image %s: %w", dig, err)
	}
	if h != dig {
		return v1.Hash{}, fmt.Errorf("writing image %s: manifest has digest %s", dig, h)
	}
	return h, nil
}

func (s *Store) writeLayer(l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer digest: %w", err)
	}
	if s.HasBlob(d) {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("reading layer %s: %w", d, err)
	}
	defer rc.Close()
	if _, _, err := s.WriteBlobFrom(rc, d); err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	return nil
}

// LayerDirPath is where the unpacked directory of diffID lives, and whether it exists.
func (s *Store) LayerDirPath(diffID v1.Hash) (string, bool) {
	_ = s.hold(diffID) // a closed store only reads
	p := s.path("layers", diffID.Hex)
	_, err := os.Stat(p)
	return p, err == nil && validHash(diffID)
}

// LayerDir returns the unpacked directory of the layer with this diffID, unpacking it
// from its blob first when needed (atomically: into a temp dir, then renamed). The
// uncompressed stream is hashed while unpacking and must match the diffID.
func (s *Store) LayerDir(l v1.Layer) (string, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return "", fmt.Errorf("unpacking layer: %w", err)
	}
	if !validHash(diffID) {
		return "", fmt.Errorf("unpacking layer: bad diffID %q", diffID)
	}
	if d, err := l.Digest(); err == nil {
		if err := s.hold(d, diffID); err != nil {
			return "", fmt.Errorf("unpacking layer %s: %w", diffID, err)
		}
	}
	if p, ok := s.LayerDirPath(diffID); ok {
		return p, nil
	}
	tmp, err := s.unpackTemp(l, diffID)
	if err != nil {
		return "", err
	}
	return s.AdoptLayerDir(diffID, tmp)
}

// unpackTemp unpacks l into a new directory under tmp/, checking that the
// uncompressed stream hashes to diffID, and returns the directory.
func (s *Store) unpackTemp(l v1.Layer, diffID v1.Hash) (string, error) {
	tmp, err := s.TempDir("unpack-")
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpacking layer %s: %w", diffID, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	hw := sha256.New()
	tee := io.TeeReader(rc, hw)
	if err := layer.Unpack(tee, tmp); err != nil {
		return fail(err)
	}
	if _, err := io.Copy(io.Discard, tee); err != nil { // tar padding past the end marker
		return fail(err)
	}
	if got := "sha256:" + hex.EncodeToString(hw.Sum(nil)); got != diffID.String() {
		return fail(fmt.Errorf("uncompressed content has digest %s", got))
	}
	return tmp, nil
}

// LayerDirs returns the unpacked directories of layers (bottom first, as an image
// lists them) topmost first, the order overlayfs takes lower directories in,
// unpacking each that is missing.
func (s *Store) LayerDirs(layers []v1.Layer) ([]string, error) {
	dirs := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		d, err := s.LayerDir(layers[i])
		if err != nil {
			return nil, fmt.Errorf("unpacking layer: %w", err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// AdoptLayerDir moves dir (already in overlay lower format, on the store's filesystem)
// into place as the unpacked directory of diffID. If one exists already, dir is removed.
func (s *Store) AdoptLayerDir(diffID v1.Hash, dir string) (string, error) {
	return s.adopt(diffID, dir, true)
}

// adopt is AdoptLayerDir; syncFirst false means the caller has just synced
// the store's filesystem after the last write to dir.
func (s *Store) adopt(diffID v1.Hash, dir string, syncFirst bool) (string, error) {
	if !validHash(diffID) {
		return "", fmt.Errorf("adopting layer dir %q: bad diffID %q", dir, diffID)
	}
	if err := s.hold(diffID); err != nil {
		return "", fmt.Errorf("adopting layer dir %q as %s: %w", dir, diffID, err)
	}
	dst := s.path("layers", diffID.Hex)
	if _, err := os.Stat(dst); err == nil {
		return dst, os.RemoveAll(dir)
	}
	// Every file of the tree on disk before its name appears (see sync.go).
	if syncFirst {
		if err := s.syncTree(dir); err != nil {
			return "", fmt.Errorf("adopting layer dir %q as %s: %w", dir, diffID, err)
		}
	}
	if err := os.Rename(dir, dst); err != nil {
		if _, serr := os.Stat(dst); serr == nil { // lost the race; theirs is as good
			return dst, os.RemoveAll(dir)
		}
		return "", fmt.Errorf("adopting layer dir %q as %s: %w", dir, diffID, err)
	}
	if err := SyncDir(s.path("layers")); err != nil {
		return "", fmt.Errorf("adopting layer dir %q as %s: %w", dir, diffID, err)
	}
	return dst, nil
}

// TreeLayer returns l, except that when its unpacked directory is in the store its
// Uncompressed stream is written from that directory instead of inflating the blob.
// The stream describes the same files, but for layers not written by slimbuild its
// bytes may differ from the blob's (entry order, header format), so it is for readers
// of the file tree, such as the size and attack-surface analysis, and not for
// anything that hashes or ships the layer.
func (s *Store) TreeLayer(l v1.Layer) v1.Layer {
	diffID, err := l.DiffID()
	if err != nil {
		return l
	}
	dir, ok := s.LayerDirPath(diffID)
	if !ok {
		return l
	}
	return &treeLayer{Layer: l, dir: dir}
}

type treeLayer struct {
	v1.Layer
	dir string
}

func (t *treeLayer) Uncompressed() (io.ReadCloser, error) {
	return layer.Stream(t.dir, layer.WriteOptions{}), nil
}
