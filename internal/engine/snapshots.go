package engine

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/store"
)

// A step's result is a snapshot first; its blob is made on demand by the store
// (store.SnapshotLayers), once per build, and kept in the step's cache record.

// snapshots are this build's snapshot layers.
func (b *builder) snapshots() *store.SnapshotLayers {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.snaps == nil {
		b.snaps = b.st.SnapshotLayers(b.opts.Compression, b.opts.SourceDateEpoch)
	}
	return b.snaps
}

// snapLayer is the layer of the step whose cache record rec (under key) names a snapshot.
func (b *builder) snapLayer(key string, rec record) *store.SnapshotLayer {
	return b.snapshots().Layer(*rec.Snapshot, &snapRecord{b: b, key: key, rec: rec})
}

// snapRecord is a step's cache record as its snapshot layer reads and extends it.
type snapRecord struct {
	b   *builder
	key string // the cache key whose record names the snapshot
	rec record // as read or written when the step was applied
}

var _ store.SnapshotRecord = (*snapRecord)(nil)

// Blobs are the blobs recorded for the snapshot: in the record the step was
// applied from, then in the record as it is now (another build may have made one).
func (r *snapRecord) Blobs() []store.LayerInfo {
	var out []store.LayerInfo
	for _, rr := range []*record{&r.rec, r.b.recordOf(r.key)} {
		if rr != nil && rr.Layer != nil && rr.Snapshot != nil && *rr.Snapshot == *r.rec.Snapshot {
			out = append(out, *rr.Layer)
		}
	}
	return out
}

// Keep records info as the blob of the step's snapshot.
func (r *snapRecord) Keep(info store.LayerInfo) error {
	rec := r.rec
	rec.Layer = &info
	return r.b.cachePut(r.key, rec)
}

func (r *snapRecord) String() string { return "cache key " + r.key }

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

// materializeAll makes the blobs of every snapshot layer in layers, a few at a time.
func (b *builder) materializeAll(layers []v1.Layer) error {
	return b.snapshots().Materialize(layers, min(b.opts.Jobs, 2))
}

// layerDirs returns the directories of layers (bottom first) topmost first, as
// overlayfs takes lower directories.
func (b *builder) layerDirs(layers []v1.Layer) ([]string, error) {
	return b.unpacker().LowerDirs(layers)
}
