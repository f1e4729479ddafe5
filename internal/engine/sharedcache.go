package engine

import (
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

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
func (b *builder) sharedGet(key string) (*record, v1.Layer, bool) {
	if b.opts.NoCache {
		return nil, nil, false
	}
	for _, src := range b.opts.CacheFrom {
		info, created, ok := src.Lookup(key)
		if !ok {
			continue
		}
		rec := &record{Layer: info, Created: created}
		// Once the store holds what the step made, the store's cache records it too,
		// so that later builds hit without the shared cache.
		keep := func() { _ = b.cachePut(key, *rec) }
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
		return rec, &lazyLayer{st: b.st, info: *info, remote: blob, fetched: keep}, true
	}
	return nil, nil, false
}

// logStep remembers a filesystem step for cache export.
func (b *builder) logStep(st *step, key string, rec *record, l v1.Layer) {
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
		if ll, ok := s.Blob.(*lazyLayer); ok {
			s.Blob = ll.export()
		}
		out[i] = s
	}
	return out
}

// lazyLayer is a layer that the shared cache holds and the store may not yet. Its
// metadata comes from the cache record; the first read of its content downloads the
// blob into the store (checked against its digest), and reads come from there.
type lazyLayer struct {
	st     *store.Store
	info   store.LayerInfo
	remote v1.Layer
	// fetched, when set, is called once the blob is in the store.
	fetched func()

	once  sync.Once
	local v1.Layer
	err   error
}

var _ v1.Layer = (*lazyLayer)(nil)

func (l *lazyLayer) Digest() (v1.Hash, error)            { return l.info.Digest, nil }
func (l *lazyLayer) DiffID() (v1.Hash, error)            { return l.info.DiffID, nil }
func (l *lazyLayer) Size() (int64, error)                { return l.info.Size, nil }
func (l *lazyLayer) MediaType() (types.MediaType, error) { return l.info.MediaType, nil }

func (l *lazyLayer) Descriptor() (*v1.Descriptor, error) {
	return &v1.Descriptor{MediaType: l.info.MediaType, Size: l.info.Size, Digest: l.info.Digest}, nil
}

// fetch makes sure the blob is in the store.
func (l *lazyLayer) fetch() (v1.Layer, error) {
	l.once.Do(func() {
		if !l.st.HasBlob(l.info.Digest) {
			rc, err := l.remote.Compressed()
			if err != nil {
				l.err = fmt.Errorf("fetching cached layer %s: %w", l.info.Digest, err)
				return
			}
			// At most one byte more than the record says: a longer blob fails its
			// digest check without filling the disk first.
			_, _, err = l.st.WriteBlobFrom(io.LimitReader(rc, l.info.Size+1), l.info.Digest)
			rc.Close()
			if err != nil {
				l.err = fmt.Errorf("fetching cached layer %s: %w", l.info.Digest, err)
				return
			}
		}
		l.local, l.err = l.st.Layer(l.info)
		if l.err == nil && l.fetched != nil {
			l.fetched()
		}
	})
	return l.local, l.err
}

// inStore reports whether the blob is in the store.
func (l *lazyLayer) inStore() bool { return l.st.HasBlob(l.info.Digest) }

// export is the layer to push: the store's blob when it was fetched, else the
// shared cache's (which a registry can mount instead of receiving it again).
func (l *lazyLayer) export() v1.Layer {
	if l.inStore() {
		if local, err := l.st.Layer(l.info); err == nil {
			return local
		}
	}
	return l.remote
}

func (l *lazyLayer) Compressed() (io.ReadCloser, error) {
	local, err := l.fetch()
	if err != nil {
		return nil, err
	}
	return local.Compressed()
}

func (l *lazyLayer) Uncompressed() (io.ReadCloser, error) {
	local, err := l.fetch()
	if err != nil {
		return nil, err
	}
	return local.Uncompressed()
}

// fetchLayers downloads every layer of ls that only a shared cache holds.
func fetchLayers(ls []v1.Layer) error {
	for _, l := range ls {
		if ll, ok := l.(*lazyLayer); ok {
			if _, err := ll.fetch(); err != nil {
				return err
			}
		}
	}
	return nil
}

// remoteOnly reports whether some layer of ls is not in the store yet.
func remoteOnly(ls []v1.Layer) bool {
	for _, l := range ls {
		if ll, ok := l.(*lazyLayer); ok && !ll.inStore() {
			return true
		}
	}
	return false
}
