package image

import (
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/store"
)

// LazyLayer is a layer that a remote (a shared build cache) holds and the
// store may not yet. Its metadata is info, as the remote's record has it; the
// first read of its content downloads the blob into the store (checked against
// info's digest and at most one byte longer than its size), and reads come from
// there. It is safe for concurrent use.
type LazyLayer struct {
	st     *store.Store
	info   store.LayerInfo
	remote v1.Layer
	// fetched, when set, is called once the blob is in the store.
	fetched func()

	once  sync.Once
	local v1.Layer
	err   error
}

var _ v1.Layer = (*LazyLayer)(nil)

// NewLazyLayer is remote's blob of info as a layer of st; fetched, when not
// nil, is called once the blob is in the store.
func NewLazyLayer(st *store.Store, info store.LayerInfo, remote v1.Layer, fetched func()) *LazyLayer {
	return &LazyLayer{st: st, info: info, remote: remote, fetched: fetched}
}

func (l *LazyLayer) Digest() (v1.Hash, error)            { return l.info.Digest, nil }
func (l *LazyLayer) DiffID() (v1.Hash, error)            { return l.info.DiffID, nil }
func (l *LazyLayer) Size() (int64, error)                { return l.info.Size, nil }
func (l *LazyLayer) MediaType() (types.MediaType, error) { return l.info.MediaType, nil }

func (l *LazyLayer) Descriptor() (*v1.Descriptor, error) {
	return &v1.Descriptor{MediaType: l.info.MediaType, Size: l.info.Size, Digest: l.info.Digest}, nil
}

// Fetch makes sure the blob is in the store and returns the store's layer.
func (l *LazyLayer) Fetch() (v1.Layer, error) {
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

// InStore reports whether the blob is in the store.
func (l *LazyLayer) InStore() bool { return l.st.HasBlob(l.info.Digest) }

// Export is the layer to push: the store's blob when it was fetched, else the
// shared cache's (which a registry can mount instead of receiving it again).
func (l *LazyLayer) Export() v1.Layer {
	if l.InStore() {
		if local, err := l.st.Layer(l.info); err == nil {
			return local
		}
	}
	return l.remote
}

func (l *LazyLayer) Compressed() (io.ReadCloser, error) {
	local, err := l.Fetch()
	if err != nil {
		return nil, err
	}
	return local.Compressed()
}

func (l *LazyLayer) Uncompressed() (io.ReadCloser, error) {
	local, err := l.Fetch()
	if err != nil {
		return nil, err
	}
	return local.Uncompressed()
}

// FetchLayers downloads every LazyLayer of ls that is not in the store yet.
func FetchLayers(ls []v1.Layer) error {
	for _, l := range ls {
		if ll, ok := l.(*LazyLayer); ok {
			if _, err := ll.Fetch(); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoteOnly reports whether some LazyLayer of ls is not in the store yet.
func RemoteOnly(ls []v1.Layer) bool {
	for _, l := range ls {
		if ll, ok := l.(*LazyLayer); ok && !ll.InStore() {
			return true
		}
	}
	return false
}
