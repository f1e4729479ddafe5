package engine

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/store"
)

// A step's result is a snapshot first: its committed directory and its cache key.
// The tar, diffID and compressed blob are made only when something asks for them
// (the image that ships, an output, a cache export), once, in one pass (tar →
// hash → compress → hash → temp file), and then recorded in the step's cache
// record so that no later build makes them again. A stage that is thrown away
// costs its steps and nothing else.

// snapLayer is the layer of a step whose record names a snapshot.
type snapLayer struct {
	b   *builder
	key string // the cache key whose record names the snapshot
	rec record // as read or written when the step was applied
}

var _ v1.Layer = (*snapLayer)(nil)

// blob is what making a snapshot's blob yields; one per snapshot and build.
type blob struct {
	once  sync.Once
	done  atomic.Bool // the blob was made
	info  store.LayerInfo
	layer v1.Layer
	err   error
}

func (l *snapLayer) id() v1.Hash { return *l.rec.Snapshot }

// dir is the snapshot's tree: where it was committed, or, once promoted (by this
// process or another), the layer directory of its diffID.
func (l *snapLayer) dir() (string, error) {
	if p, ok := l.b.st.SnapshotDir(l.id()); ok {
		return p, nil
	}
	for _, info := range l.blobInfos() {
		if p, ok := l.b.st.LayerDirPath(info.DiffID); ok {
			return p, nil
		}
		// The tree went (fsck --repair removes a damaged one): unpack the blob.
		if l.b.st.HasBlob(info.Digest) {
			bl, err := l.b.st.Layer(info)
			if err != nil {
				return "", err
			}
			return l.b.unpacker().LayerDir(bl)
		}
	}
	return "", fmt.Errorf("snapshot %s of cache key %s is missing from the store (try slimbuild fsck --repair)", l.id().Hex, l.key)
}

// blobInfos are the blobs recorded for this snapshot: in the record the step was
// applied from, then in the record as it is now (another build may have made one).
func (l *snapLayer) blobInfos() []store.LayerInfo {
	var out []store.LayerInfo
	for _, r := range []*record{&l.rec, l.b.recordOf(l.key)} {
		if r != nil && r.Layer != nil && r.Snapshot != nil && *r.Snapshot == l.id() {
			out = append(out, *r.Layer)
		}
	}
	return out
}

// recordOf reads key's record afresh; nil when there is none.
func (b *builder) recordOf(key string) *record {
	data, err := b.st.GetCache(key)
	if err != nil {
		return nil
	}
	var r record
	if decodeRecord(data, &r) != nil {
		return nil
	}
	return &r
}

// blobOf is the blob state of snapshot id in this build.
func (b *builder) blobOf(id v1.Hash) *blob {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blobs == nil {
		b.blobs = map[string]*blob{}
	}
	bl, ok := b.blobs[id.Hex]
	if !ok {
		bl = &blob{}
		b.blobs[id.Hex] = bl
	}
	return bl
}

// materialize makes the snapshot's blob (or finds the one made before, in the
// compression this build asks for) and promotes its tree to the layer directory.
func (l *snapLayer) materialize() (*blob, error) {
	bl := l.b.blobOf(l.id())
	bl.once.Do(func() {
		bl.info, bl.err = l.makeBlob()
		if bl.err != nil {
			return
		}
		if err := l.b.st.PromoteSnapshot(l.id(), bl.info.DiffID); err != nil {
			bl.err = err
			return
		}
		bl.layer, bl.err = l.b.st.Layer(bl.info)
		bl.done.Store(bl.err == nil)
	})
	return bl, bl.err
}

func (l *snapLayer) makeBlob() (store.LayerInfo, error) {
	want, err := l.b.opts.Compression.MediaType()
	if err != nil {
		return store.LayerInfo{}, err
	}
	for _, info := range l.blobInfos() {
		if info.MediaType == want && l.b.st.HasBlob(info.Digest) {
			return info, nil
		}
	}
	dir, err := l.dir()
	if err != nil {
		return store.LayerInfo{}, err
	}
	lw, err := l.b.st.NewLayerWriter(l.b.opts.Compression)
	if err != nil {
		return store.LayerInfo{}, err
	}
	if err := layer.Write(lw, dir, layer.WriteOptions{SourceDateEpoch: l.b.opts.SourceDateEpoch}); err != nil {
		lw.Abort()
		return store.LayerInfo{}, fmt.Errorf("writing layer of snapshot %s: %w", l.id().Hex, err)
	}
	info, err := lw.Commit()
	if err != nil {
		return store.LayerInfo{}, fmt.Errorf("storing layer of snapshot %s: %w", l.id().Hex, err)
	}
	rec := l.rec
	rec.Layer = &info
	if err := l.b.cachePut(l.key, rec); err != nil {
		return store.LayerInfo{}, fmt.Errorf("saving cache record: %w", err)
	}
	return info, nil
}

// made reports whether this build made the snapshot's blob.
func (l *snapLayer) made() bool { return l.b.blobOf(l.id()).done.Load() }

func (l *snapLayer) info() (store.LayerInfo, error) {
	bl, err := l.materialize()
	if err != nil {
		return store.LayerInfo{}, err
	}
	return bl.info, nil
}

func (l *snapLayer) Digest() (v1.Hash, error) {
	i, err := l.info()
	return i.Digest, err
}

func (l *snapLayer) DiffID() (v1.Hash, error) {
	i, err := l.info()
	return i.DiffID, err
}

func (l *snapLayer) Size() (int64, error) {
	i, err := l.info()
	return i.Size, err
}

func (l *snapLayer) MediaType() (types.MediaType, error) {
	i, err := l.info()
	return i.MediaType, err
}

func (l *snapLayer) Compressed() (io.ReadCloser, error) {
	bl, err := l.materialize()
	if err != nil {
		return nil, err
	}
	return bl.layer.Compressed()
}

func (l *snapLayer) Uncompressed() (io.ReadCloser, error) {
	bl, err := l.materialize()
	if err != nil {
		return nil, err
	}
	return bl.layer.Uncompressed()
}

// tree is the layer's files as a tar written from its directory, without making
// its blob: for readers of the file tree (the payoff summary), never for anything
// that hashes or ships the layer.
func (l *snapLayer) tree() (io.ReadCloser, error) {
	dir, err := l.dir()
	if err != nil {
		return nil, err
	}
	return layer.Stream(dir, layer.WriteOptions{SourceDateEpoch: l.b.opts.SourceDateEpoch}), nil
}

// materializeAll makes the blobs of every snapshot layer in layers, a few at a time.
func (b *builder) materializeAll(layers []v1.Layer) error {
	var snaps []*snapLayer
	for _, l := range layers {
		if sl, ok := l.(*snapLayer); ok {
			snaps = append(snaps, sl)
		}
	}
	workers := min(b.opts.Jobs, 2, len(snaps))
	if workers <= 1 {
		for _, sl := range snaps {
			if _, err := sl.materialize(); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(snaps))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				_, errs[i] = snaps[i].materialize()
			}
		})
	}
	for i := range snaps {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// layerDirs returns the directories of layers (bottom first) topmost first, as
// overlayfs takes lower directories: a snapshot's tree where it is, other layers
// unpacked by the store when needed.
func (b *builder) layerDirs(layers []v1.Layer) ([]string, error) {
	dirs := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		var d string
		var err error
		if sl, ok := layers[i].(*snapLayer); ok {
			d, err = sl.dir()
		} else {
			d, err = b.unpacker().LayerDir(layers[i])
		}
		if err != nil {
			return nil, fmt.Errorf("unpacking layer: %w", err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}
