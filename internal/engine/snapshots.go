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
func (b *builder) snapLayer(key string, rec store.StepRecord) *store.SnapshotLayer {
	return b.snapshots().StepLayer(key, rec)
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
