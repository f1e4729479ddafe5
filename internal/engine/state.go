package engine

import (
	"encoding/json"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/store"
)

// stageState is a stage's state between instructions: its filesystem (layers,
// keyed by key) and its dockerfile.Scope (config and variables).
type stageState struct {
	dockerfile.Scope
	layers []v1.Layer
	key    string // identity of the filesystem state (a cache chain key)
	// namedDir is a stage replaced by a local-directory named context: it has
	// no filesystem state and cannot be a FROM base.
	namedDir bool
}

func (s *stageState) clone() *stageState {
	c := *s
	c.Scope = s.Scope.Clone()
	c.layers = slices.Clone(s.layers)
	return &c
}

// record is what the cache holds for a filesystem step: the snapshot its changes
// were committed as, and the layer blob once one was made (see snaplayer.go). A
// step that wrote its layer blob directly (a COPY streamed into a tar) has a
// Layer and no Snapshot; a step that changed nothing has neither.
type record struct {
	Snapshot *v1.Hash         `json:"snapshot,omitempty"`
	Layer    *store.LayerInfo `json:"layer,omitempty"`
	Created  time.Time        `json:"created"`
}

func decodeRecord(data []byte, r *record) error { return json.Unmarshal(data, r) }

// usable reports whether what r names is still in the store, in a form this build
// can use: a snapshot's tree (its blob is made again on demand if it went), or a
// directly written blob in the compression asked for.
func (b *builder) usable(r *record) bool {
	if r.Snapshot != nil {
		if _, ok := b.st.SnapshotDir(*r.Snapshot); ok {
			return true
		}
		if r.Layer == nil {
			return false
		}
		_, ok := b.st.LayerDirPath(r.Layer.DiffID)
		return ok || b.st.HasBlob(r.Layer.Digest)
	}
	if r.Layer == nil {
		return true
	}
	want, err := b.opts.Compression.MediaType()
	return err == nil && r.Layer.MediaType == want && b.st.HasBlob(r.Layer.Digest)
}

func (b *builder) cacheGet(key string) (*record, bool) {
	if b.opts.NoCache {
		return nil, false
	}
	data, err := b.st.GetCache(key)
	if err != nil {
		return nil, false
	}
	var r record
	if err := decodeRecord(data, &r); err != nil || !b.usable(&r) {
		return nil, false
	}
	return &r, true
}

func (b *builder) cachePut(key string, r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.st.PutCache(key, data)
}
