package store

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// A build step's result is a snapshot first: its committed directory and the
// caller's record of it (the engine's: the step's cache record). The tar, diffID
// and compressed blob are made only when something asks for them (the image that
// ships, an output, a cache export), once, in one pass (tar → hash → compress →
// hash → temp file), and then kept in the caller's record so that no later build
// makes them again. A stage that is thrown away costs its steps and nothing else.

// SnapshotRecord is where the caller keeps what is known of a snapshot's blob.
type SnapshotRecord interface {
	// Blobs are the blobs recorded for the snapshot so far (the caller may have
	// several records of it: as it was applied, as it is now); none before one
	// is made.
	Blobs() []LayerInfo
	// Keep records the blob made for the snapshot.
	Keep(LayerInfo) error
	// String names the record in errors.
	String() string
}

// SnapshotLayers hands out committed snapshots as layers whose blobs are made
// on demand, in one compression and with one SOURCE_DATE_EPOCH, each at most
// once however many layers name it. It is safe for concurrent use.
type SnapshotLayers struct {
	st          *Store
	compression Compression
	epoch       *time.Time

	mu    sync.Mutex
	blobs map[string]*snapBlob
}

// SnapshotLayers returns the layers of this store's snapshots as one build
// makes them: compressed with c, times clamped to epoch (nil for none).
func (s *Store) SnapshotLayers(c Compression, epoch *time.Time) *SnapshotLayers {
	return &SnapshotLayers{st: s, compression: c, epoch: epoch, blobs: map[string]*snapBlob{}}
}

// Layer is snapshot id as a layer; rec is where its blob is found and kept.
func (sl *SnapshotLayers) Layer(id v1.Hash, rec SnapshotRecord) *SnapshotLayer {
	return &SnapshotLayer{sl: sl, id: id, rec: rec}
}

// SnapshotLayer is a committed snapshot as a v1.Layer: reading any of its
// v1.Layer methods makes its blob (once), promoting its tree to the layer
// directory of its diffID.
type SnapshotLayer struct {
	sl  *SnapshotLayers
	id  v1.Hash
	rec SnapshotRecord
}

var _ v1.Layer = (*SnapshotLayer)(nil)

// snapBlob is what making a snapshot's blob yields; one per snapshot and SnapshotLayers.
type snapBlob struct {
	once  sync.Once
	done  atomic.Bool // the blob was made
	info  LayerInfo
	layer v1.Layer
	err   error
}

// ID is the snapshot's.
func (l *SnapshotLayer) ID() v1.Hash { return l.id }

// Dir is the snapshot's tree: where it was committed, or, once promoted (by this
// process or another), the layer directory of its diffID.
func (l *SnapshotLayer) Dir() (string, error) {
	st := l.sl.st
	if p, ok := st.SnapshotDir(l.id); ok {
		return p, nil
	}
	for _, info := range l.rec.Blobs() {
		if p, ok := st.LayerDirPath(info.DiffID); ok {
			return p, nil
		}
		// The tree went (fsck --repair removes a damaged one): unpack the blob.
		if st.HasBlob(info.Digest) {
			bl, err := st.Layer(info)
			if err != nil {
				return "", err
			}
			return st.LayerDir(bl)
		}
	}
	return "", fmt.Errorf("snapshot %s of %s is missing from the store (try slimbuild fsck --repair)", l.id.Hex, l.rec)
}

// blob is the blob state of the snapshot.
func (l *SnapshotLayer) blob() *snapBlob {
	l.sl.mu.Lock()
	defer l.sl.mu.Unlock()
	bl, ok := l.sl.blobs[l.id.Hex]
	if !ok {
		bl = &snapBlob{}
		l.sl.blobs[l.id.Hex] = bl
	}
	return bl
}

// materialize makes the snapshot's blob (or finds the one made before, in the
// compression asked for) and promotes its tree to the layer directory.
func (l *SnapshotLayer) materialize() (*snapBlob, error) {
	bl := l.blob()
	bl.once.Do(func() {
		bl.info, bl.err = l.makeBlob()
		if bl.err != nil {
			return
		}
		if err := l.sl.st.PromoteSnapshot(l.id, bl.info.DiffID); err != nil {
			bl.err = err
			return
		}
		bl.layer, bl.err = l.sl.st.Layer(bl.info)
		bl.done.Store(bl.err == nil)
	})
	return bl, bl.err
}

func (l *SnapshotLayer) makeBlob() (LayerInfo, error) {
	st := l.sl.st
	want, err := l.sl.compression.MediaType()
	if err != nil {
		return LayerInfo{}, err
	}
	for _, info := range l.rec.Blobs() {
		if info.MediaType == want && st.HasBlob(info.Digest) {
			return info, nil
		}
	}
	dir, err := l.Dir()
	if err != nil {
		return LayerInfo{}, err
	}
	lw, err := st.NewLayerWriter(l.sl.compression)
	if err != nil {
		return LayerInfo{}, err
	}
	if err := layer.Write(lw, dir, layer.WriteOptions{SourceDateEpoch: l.sl.epoch}); err != nil {
		lw.Abort()
		return LayerInfo{}, fmt.Errorf("writing layer of snapshot %s: %w", l.id.Hex, err)
	}
	info, err := lw.Commit()
	if err != nil {
		return LayerInfo{}, fmt.Errorf("storing layer of snapshot %s: %w", l.id.Hex, err)
	}
	if err := l.rec.Keep(info); err != nil {
		return LayerInfo{}, fmt.Errorf("saving cache record: %w", err)
	}
	return info, nil
}

// Made reports whether the blob was made (through these SnapshotLayers).
func (l *SnapshotLayer) Made() bool { return l.blob().done.Load() }

// Info is the layer's blob, made now if it was not.
func (l *SnapshotLayer) Info() (LayerInfo, error) {
	bl, err := l.materialize()
	if err != nil {
		return LayerInfo{}, err
	}
	return bl.info, nil
}

func (l *SnapshotLayer) Digest() (v1.Hash, error) {
	i, err := l.Info()
	return i.Digest, err
}

func (l *SnapshotLayer) DiffID() (v1.Hash, error) {
	i, err := l.Info()
	return i.DiffID, err
}

func (l *SnapshotLayer) Size() (int64, error) {
	i, err := l.Info()
	return i.Size, err
}

func (l *SnapshotLayer) MediaType() (types.MediaType, error) {
	i, err := l.Info()
	return i.MediaType, err
}

func (l *SnapshotLayer) Compressed() (io.ReadCloser, error) {
	bl, err := l.materialize()
	if err != nil {
		return nil, err
	}
	return bl.layer.Compressed()
}

func (l *SnapshotLayer) Uncompressed() (io.ReadCloser, error) {
	bl, err := l.materialize()
	if err != nil {
		return nil, err
	}
	return bl.layer.Uncompressed()
}

// Tree is the layer's files as a tar written from its directory, without making
// its blob: for readers of the file tree (the payoff summary), never for anything
// that hashes or ships the layer.
func (l *SnapshotLayer) Tree() (io.ReadCloser, error) {
	dir, err := l.Dir()
	if err != nil {
		return nil, err
	}
	return layer.Stream(dir, layer.WriteOptions{SourceDateEpoch: l.sl.epoch}), nil
}

// Materialize makes the blobs of every snapshot layer in layers, workers at a
// time (at least one); other layers are left as they are.
func (sl *SnapshotLayers) Materialize(layers []v1.Layer, workers int) error {
	var snaps []*SnapshotLayer
	for _, l := range layers {
		if s, ok := l.(*SnapshotLayer); ok {
			snaps = append(snaps, s)
		}
	}
	workers = min(workers, len(snaps))
	if workers <= 1 {
		for _, s := range snaps {
			if _, err := s.materialize(); err != nil {
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

// LowerDirs returns the directories of layers (bottom first) topmost first, as
// overlayfs takes lower directories: a snapshot's tree where it is, other layers
// unpacked when needed.
func (s *Store) LowerDirs(layers []v1.Layer) ([]string, error) {
	dirs := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		var d string
		var err error
		if sl, ok := layers[i].(*SnapshotLayer); ok {
			d, err = sl.Dir()
		} else {
			d, err = s.LayerDir(layers[i])
		}
		if err != nil {
			return nil, fmt.Errorf("unpacking layer: %w", err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}
