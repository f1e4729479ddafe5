package store

import (
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StepRecord is what the build cache holds under a filesystem step's key: the
// snapshot the step's changes were committed as, and that snapshot's layer blob
// once one was made (see SnapshotLayers). A step that wrote its layer blob
// directly (a COPY streamed into a tar) has a Layer and no Snapshot; a step
// that changed nothing has neither.
type StepRecord struct {
	Snapshot *v1.Hash   `json:"snapshot,omitempty"`
	Layer    *LayerInfo `json:"layer,omitempty"`
	Created  time.Time  `json:"created"`
}

// Step reads key's record; ok is false when there is none or it is not one.
func (s *Store) Step(key string) (rec *StepRecord, ok bool) {
	data, err := s.GetCache(key)
	if err != nil {
		return nil, false
	}
	var r StepRecord
	if json.Unmarshal(data, &r) != nil {
		return nil, false
	}
	return &r, true
}

// PutStep records r under key.
func (s *Store) PutStep(key string, r StepRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.PutCache(key, data)
}

// Usable reports whether what r names is still in the store, in a form a build
// compressing with c can use: a snapshot's tree (its blob is made again on
// demand if it went), or a directly written blob in c.
func (s *Store) Usable(r *StepRecord, c Compression) bool {
	if r.Snapshot != nil {
		if _, ok := s.SnapshotDir(*r.Snapshot); ok {
			return true
		}
		if r.Layer == nil {
			return false
		}
		_, ok := s.LayerDirPath(r.Layer.DiffID)
		return ok || s.HasBlob(r.Layer.Digest)
	}
	if r.Layer == nil {
		return true
	}
	want, err := c.MediaType()
	return err == nil && r.Layer.MediaType == want && s.HasBlob(r.Layer.Digest)
}

// StepLayer is the layer of the step whose record rec (under key) names a
// snapshot: the blob, once made, is kept in the step's record.
func (sl *SnapshotLayers) StepLayer(key string, rec StepRecord) *SnapshotLayer {
	return sl.Layer(*rec.Snapshot, &stepRef{st: sl.st, key: key, rec: rec})
}

// stepRef is a step's record as its snapshot layer reads and extends it.
type stepRef struct {
	st  *Store
	key string     // the cache key whose record names the snapshot
	rec StepRecord // as read or written when the step was applied
}

var _ SnapshotRecord = (*stepRef)(nil)

// Blobs are the blobs recorded for the snapshot: in the record the step was
// applied from, then in the record as it is now (another build may have made one).
func (r *stepRef) Blobs() []LayerInfo {
	var out []LayerInfo
	now, _ := r.st.Step(r.key)
	for _, rr := range []*StepRecord{&r.rec, now} {
		if rr != nil && rr.Layer != nil && rr.Snapshot != nil && *rr.Snapshot == *r.rec.Snapshot {
			out = append(out, *rr.Layer)
		}
	}
	return out
}

// Keep records info as the blob of the step's snapshot.
func (r *stepRef) Keep(info LayerInfo) error {
	rec := r.rec
	rec.Layer = &info
	return r.st.PutStep(r.key, rec)
}

func (r *stepRef) String() string { return "cache key " + r.key }
