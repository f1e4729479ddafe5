package engine

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

// CacheSource is a shared build cache (a registry's, see package regcache) that the
// engine consults when its own cache misses.
type CacheSource interface {
	// Lookup returns what the step with key produced: its layer (nil when it
	// changed nothing) and its history time.
	Lookup(key string) (layer *store.LayerInfo, created time.Time, ok bool)
	// Blob returns the layer's content; no byte may be fetched before it is read.
	Blob(info store.LayerInfo) (v1.Layer, error)
}

// CacheStep is one filesystem step of a build, as a cache export needs it.
type CacheStep struct {
	Key     string
	Created time.Time
	// Blob is the layer's content: the store's blob, or the shared cache's when the
	// step came from there and nothing needed its bytes.
	Blob v1.Layer
	// Stage is the index of the stage the step belongs to; Final is set when that
	// stage is the target or one the target is built FROM.
	Stage int
	Final bool

	layer *store.LayerInfo // as the record had it: nil for a snapshot without a blob
}

// LayerInfo is the step's layer blob, made now when the step left only a
// snapshot; nil when the step changed nothing.
func (s CacheStep) LayerInfo() (*store.LayerInfo, error) {
	if sl, ok := s.Blob.(*store.SnapshotLayer); ok {
		info, err := sl.Info()
		if err != nil {
			return nil, err
		}
		return &info, nil
	}
	return s.layer, nil
}

// sharedGet looks key up in the shared caches, in order.
func (b *builder) sharedGet(key string) (*store.StepRecord, v1.Layer, bool) {
	if b.opts.NoCache {
		return nil, nil, false
	}
	for _, src := range b.opts.CacheFrom {
		info, created, ok := src.Lookup(key)
		if !ok {
			continue
		}
		rec := &store.StepRecord{Layer: info, Created: created}
		// Once the store holds what the step made, the store's cache records it too,
		// so that later builds hit without the shared cache.
		keep := func() { _ = b.st.PutStep(key, *rec) }
		if info == nil {
			keep()
			return rec, nil, true
		}
		if b.st.HasBlob(info.Digest) {
			l, err := b.st.Layer(*info)
			if err == nil {
				keep()
				return rec, l, true
			}
		}
		blob, err := src.Blob(*info)
		if err != nil {
			continue
		}
		return rec, image.NewLazyLayer(b.st, *info, blob, keep), true
	}
	return nil, nil, false
}

// logStep remembers a filesystem step for cache export.
func (b *builder) logStep(st *step, key string, rec *store.StepRecord, l v1.Layer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stepLog = append(b.stepLog, CacheStep{Key: key, layer: rec.Layer, Created: rec.Created, Blob: l, Stage: st.stage.Index})
}

// cacheSteps is the step log with Final set, in the order the steps ran.
func (b *builder) cacheSteps() []CacheStep {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]CacheStep, len(b.stepLog))
	for i, s := range b.stepLog {
		s.Final = b.ships[s.Stage]
		if ll, ok := s.Blob.(*image.LazyLayer); ok {
			s.Blob = ll.Export()
		}
		out[i] = s
	}
	return out
}
