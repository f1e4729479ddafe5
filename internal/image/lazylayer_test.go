package image

import (
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/store"
)

// countingLayer is a remote layer that counts its reads and bytes served.
type countingLayer struct {
	v1.Layer
	body  []byte
	opens atomic.Int32
	read  atomic.Int64
}

func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	l.opens.Add(1)
	return io.NopCloser(&countingReader{r: bytes.NewReader(l.body), n: &l.read}), nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestLazyLayer: a lazy layer answers its metadata without a byte fetched,
// fetches once on first read, and refuses a remote blob that is not the one its
// record names, reading at most one byte more than the record's size of it.
func TestLazyLayer(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good := []byte("the cached layer")
	info := func(b []byte) store.LayerInfo {
		h, n, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return store.LayerInfo{Digest: h, DiffID: h, Size: n, MediaType: types.OCIUncompressedLayer}
	}

	t.Run("fetched once on first read", func(t *testing.T) {
		remote := &countingLayer{Layer: static.NewLayer(good, types.OCIUncompressedLayer), body: good}
		fetched := 0
		l := NewLazyLayer(st, info(good), remote, func() { fetched++ })
		if d, err := l.Digest(); err != nil || d != info(good).Digest {
			t.Fatalf("Digest = %v, %v", d, err)
		}
		if _, err := l.Size(); err != nil {
			t.Fatal(err)
		}
		if remote.opens.Load() != 0 || l.InStore() || !RemoteOnly([]v1.Layer{l}) {
			t.Fatalf("metadata fetched the blob")
		}
		if l.Export() != v1.Layer(remote) {
			t.Error("Export before a fetch is not the remote's layer")
		}
		for range 3 {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, good) {
				t.Fatalf("read %q", got)
			}
		}
		if remote.opens.Load() != 1 || fetched != 1 || !l.InStore() || RemoteOnly([]v1.Layer{l}) {
			t.Errorf("opened the remote %d times, fetched called %d times; want 1, 1", remote.opens.Load(), fetched)
		}
		if l.Export() == v1.Layer(remote) {
			t.Error("Export after a fetch is still the remote's layer")
		}
	})

	t.Run("wrong blob refused, bounded", func(t *testing.T) {
		want := []byte("what the record names")
		huge := bytes.Repeat([]byte("x"), 1<<20)
		remote := &countingLayer{Layer: static.NewLayer(huge, types.OCIUncompressedLayer), body: huge}
		l := NewLazyLayer(st, info(want), remote, func() { t.Error("fetched called for a refused blob") })
		if err := FetchLayers([]v1.Layer{l}); err == nil || !strings.Contains(err.Error(), info(want).Digest.String()) {
			t.Errorf("FetchLayers = %v, want an error naming %s", err, info(want).Digest)
		}
		if n := remote.read.Load(); n > info(want).Size+1+32<<10 {
			t.Errorf("read %d bytes of a remote blob the record says is %d bytes", n, info(want).Size)
		}
		if st.HasBlob(info(want).Digest) || st.HasBlob(info(huge).Digest) {
			t.Error("a refused blob is in the store")
		}
	})
}
