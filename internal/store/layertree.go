package store

import (
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerTree is one layer as a reader of its files sees it.
type LayerTree struct {
	ID   string                        // stable identity: the diffID ("sha256:…"), or "snapshot:<id>" for a layer that has no blob yet
	Open func() (io.ReadCloser, error) // the layer as an uncompressed tar, written from its unpacked dir when the store has one
}

// LayerTrees describes ls (layers of the store, or snapshot layers not yet
// made into blobs) for readers of their files.
func (s *Store) LayerTrees(ls []v1.Layer) ([]LayerTree, error) {
	out := make([]LayerTree, len(ls))
	for i, l := range ls {
		if sl, ok := l.(*SnapshotLayer); ok && !sl.Made() {
			// No blob, no diffID: the snapshot names the tree.
			out[i] = LayerTree{ID: "snapshot:" + sl.ID().Hex, Open: sl.Tree}
			continue
		}
		id, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("reading diff ID of layer %d: %w", i, err)
		}
		out[i] = LayerTree{ID: id.String(), Open: func() (io.ReadCloser, error) { return s.TreeLayer(l).Uncompressed() }}
	}
	return out, nil
}
