package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// ErrNotFound is returned when a name, blob or cache key is not in the store.
var ErrNotFound = errors.New("not found")

// Compression selects how layer blobs are compressed.
type Compression string

const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
	None Compression = "none"
)

// ParseCompression reads a --compression value: gzip, zstd or none.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd, None:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", s)
}

// MediaType is the OCI layer media type for blobs compressed with c.
func (c Compression) MediaType() (types.MediaType, error) {
	switch c {
	case Gzip, "":
		return types.OCILayer, nil
	case Zstd:
		return types.OCILayerZStd, nil
	case None:
		return types.OCIUncompressedLayer, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", string(c))
}

// LayerInfo describes a layer blob committed to the store.
type LayerInfo struct {
	DiffID    v1.Hash         `json:"diffID"`    // sha256 of the uncompressed tar
	Digest    v1.Hash         `json:"digest"`    // sha256 of the blob as stored
	Size      int64           `json:"size"`      // size of the blob as stored
	MediaType types.MediaType `json:"mediaType"` // OCI layer media type matching the compression
}

// Entry is one named image in the store.
type Entry struct {
	Name   string  // normalised name, e.g. docker.io/library/busybox:latest
	Digest v1.Hash // manifest digest
}

// Store is the local content store under a root directory. See doc.go.
type Store struct {
	root string

	mu    sync.Mutex
	inuse *os.File // root/inuse, read-locked while open (see lockInuse)

	leaseMu sync.Mutex
	lease   *os.File        // this Store's lease (see lease.go), flocked exclusively
	gcLock  *os.File        // ROOT/gc: exclusive during GC, shared while adding to a lease
	held    map[string]bool // hex digests already in the lease
}

// LayerWriter receives an uncompressed layer tar; Commit compresses, hashes and stores it in the same pass.
type LayerWriter interface {
	io.Writer
	// Commit finishes the blob and renames it into place.
	Commit() (LayerInfo, error)
	// Abort removes the temporary file; safe after Commit (no-op).
	Abort()
}

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Open opens (creating if needed) the store at root. When no other process has it
// open, Open first reclaims what killed processes left (see stale.go).
func Open(root string) (*Store, error) {
	return open(root, true)
}

func open(root string, reclaim bool) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("opening store %q: %w", root, err)
	}
	s := &Store{root: abs}
	if err := s.makePrivate(); err != nil {
		return nil, fmt.Errorf("opening store %q: %w", root, err)
	}
	if _, err := os.Stat(s.path("oci-layout")); errors.Is(err, os.ErrNotExist) {
		if err := s.writeFileAtomic(s.path("oci-layout"), []byte(ociLayoutFile)); err != nil {
			return nil, fmt.Errorf("opening store %q: %w", root, err)
		}
	}
	if _, err := os.Stat(s.path("index.json")); errors.Is(err, os.ErrNotExist) {
		if err := s.updateIndex(func(*v1.IndexManifest) error { return nil }); err != nil {
			return nil, fmt.Errorf("opening store %q: %w", root, err)
		}
	}
	f, err := os.OpenFile(s.path("inuse"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening store %q: %w", root, err)
	}
	// Alone? Then everything in tmp/ was left by a killed process.
	if reclaim && lockInuse(f, unix.F_WRLCK, false) == nil {
		s.cleanTmp()
		s.removeDeadLeases()
	}
	if err := lockInuse(f, unix.F_RDLCK, true); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking store %q: %w", root, err)
	}
	s.inuse = f
	if err := s.openLease(); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening store %q: %w", root, err)
	}
	return s, nil
}

// Close releases the store's shared lock. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inuse == nil {
		return nil
	}
	s.leaseMu.Lock()
	s.closeLease()
	s.leaseMu.Unlock()
	err := s.inuse.Close() // releases the flock
	s.inuse = nil
	return err
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// TempDir makes a directory under the store's tmp/ (same filesystem, so renames are atomic).
// The caller removes it; leftovers are removed by a later Open or by GC.
func (s *Store) TempDir(prefix string) (string, error) {
	d, err := os.MkdirTemp(s.path("tmp"), prefix)
	if err != nil {
		return "", fmt.Errorf("making temporary directory: %w", err)
	}
	return d, nil
}

func (s *Store) tempFile(prefix string) (*os.File, error) {
	f, err := os.CreateTemp(s.path("tmp"), prefix)
	if err != nil {
		return nil, fmt.Errorf("making temporary file: %w", err)
	}
	return f, nil
}

// lockInuse sets an open file description lock (F_OFD_SETLK) of type typ
// (F_RDLCK, F_WRLCK or F_UNLCK) on all of f, waiting for it when wait is set.
// ROOT/inuse is read-locked by every open Store, and write-locked by one that
// checks it is alone. Unlike flock(2), a failed upgrade from read to write keeps
// the read lock, so a Store that is not alone never stops looking busy to others.
func lockInuse(f *os.File, typ int16, wait bool) error {
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// writeFileAtomic writes data to a temporary file under tmp/ and renames it to dst.
func (s *Store) writeFileAtomic(dst string, data []byte) error {
	f, err := s.tempFile("file-")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %q: %w", f.Name(), err)
	}
	if err := syncFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %q: %w", f.Name(), err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("renaming into %q: %w", dst, err)
	}
	return SyncDir(filepath.Dir(dst))
}

// BlobPath is where the blob lives (may not exist).
func (s *Store) BlobPath(h v1.Hash) string {
	return s.path("blobs", h.Algorithm, h.Hex)
}

// HasBlob reports whether the blob is present.
func (s *Store) HasBlob(h v1.Hash) bool {
	if !validHash(h) {
		return false
	}
	_, err := os.Stat(s.BlobPath(h))
	return err == nil
}

func validHash(h v1.Hash) bool {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return false
	}
	_, err := hex.DecodeString(h.Hex)
	return err == nil && strings.ToLower(h.Hex) == h.Hex
}

// WriteBlob stores a small blob (config, manifest) and returns its digest and size.
func (s *Store) WriteBlob(data []byte) (v1.Hash, int64, error) {
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := s.hold(h); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	if s.HasBlob(h) {
		return h, int64(len(data)), nil
	}
	if err := s.writeFileAtomic(s.BlobPath(h), data); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	return h, int64(len(data)), nil
}

// WriteBlobFrom streams r into the store. When want is non-zero, the content must hash
// to it (the blob is discarded otherwise). It returns the digest and size.
func (s *Store) WriteBlobFrom(r io.Reader, want v1.Hash) (v1.Hash, int64, error) {
	if err := s.hold(want); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("writing blob %s: %w", want, err)
	}
	if want != (v1.Hash{}) && s.HasBlob(want) {
		fi, err := os.Stat(s.BlobPath(want))
		if err == nil {
			return want, fi.Size(), nil
		}
	}
	f, err := s.tempFile("blob-")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	fail := func(err error) (v1.Hash, int64, error) {
		f.Close()
		os.Remove(f.Name())
		return v1.Hash{}, 0, err
	}
	hw := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := io.Copy(io.MultiWriter(bw, hw), r)
	if err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	if err := syncFile(f); err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hw.Sum(nil))}
	if want != (v1.Hash{}) && h != want {
		return fail(fmt.Errorf("writing blob %s: content has digest %s", want, h))
	}
	_ = os.Chmod(f.Name(), 0o644)
	if err := s.hold(h); err != nil {
		return fail(fmt.Errorf("writing blob %s: %w", h, err))
	}
	if err := os.Rename(f.Name(), s.BlobPath(h)); err != nil {
		return fail(fmt.Errorf("writing blob %s: %w", h, err))
	}
	if err := SyncDir(filepath.Dir(s.BlobPath(h))); err != nil {
		return v1.Hash{}, 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	return h, n, nil
}

// NewLayerWriter starts a layer blob. Bytes written are the uncompressed tar; they are
// hashed (diffID), compressed, hashed again (digest) and spilled to a file under tmp/
// in one pass.
func (s *Store) NewLayerWriter(c Compression) (LayerWriter, error) {
	if c == "" {
		c = Gzip
	}
	mt, err := c.MediaType()
	if err != nil {
		return nil, err
	}
	f, err := s.tempFile("layer-")
	if err != nil {
		return nil, err
	}
	w := &layerWriter{s: s, f: f, mt: mt, diffHash: sha256.New(), blobHash: sha256.New()}
	w.buf = bufio.NewWriterSize(f, 1<<20)
	w.compressed = &countWriter{w: io.MultiWriter(w.buf, w.blobHash)}
	cw, err := layer.Compress(w.compressed, string(c))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("starting %s compressor: %w", c, err)
	}
	w.comp = cw
	return w, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type layerWriter struct {
	s          *Store
	f          *os.File
	buf        *bufio.Writer
	mt         types.MediaType
	diffHash   hash.Hash
	blobHash   hash.Hash
	compressed *countWriter
	comp       io.WriteCloser
	done       bool
	err        error
}

var _ LayerWriter = (*layerWriter)(nil)

func (w *layerWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("layer writer: write after commit or abort")
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.comp.Write(p)
	w.diffHash.Write(p[:n])
	if err != nil {
		w.err = fmt.Errorf("writing layer blob: %w", err)
		return n, w.err
	}
	return n, nil
}

func (w *layerWriter) Commit() (LayerInfo, error) {
	if w.done {
		return LayerInfo{}, errors.New("layer writer: commit after commit or abort")
	}
	if w.err != nil {
		w.Abort()
		return LayerInfo{}, w.err
	}
	w.done = true
	fail := func(err error) (LayerInfo, error) {
		w.f.Close()
		os.Remove(w.f.Name())
		return LayerInfo{}, fmt.Errorf("committing layer blob: %w", err)
	}
	if err := w.comp.Close(); err != nil {
		return fail(err)
	}
	if err := w.buf.Flush(); err != nil {
		return fail(err)
	}
	if err := syncFile(w.f); err != nil {
		return fail(err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return LayerInfo{}, fmt.Errorf("committing layer blob: %w", err)
	}
	info := LayerInfo{
		DiffID:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.diffHash.Sum(nil))},
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.blobHash.Sum(nil))},
		Size:      w.compressed.n,
		MediaType: w.mt,
	}
	_ = os.Chmod(w.f.Name(), 0o644)
	if err := w.s.hold(info.Digest, info.DiffID); err != nil {
		os.Remove(w.f.Name())
		return LayerInfo{}, fmt.Errorf("committing layer blob %s: %w", info.Digest, err)
	}
	// Same digest means same bytes: replacing an existing blob is harmless.
	if err := os.Rename(w.f.Name(), w.s.BlobPath(info.Digest)); err != nil {
		os.Remove(w.f.Name())
		return LayerInfo{}, fmt.Errorf("committing layer blob %s: %w", info.Digest, err)
	}
	if err := SyncDir(filepath.Dir(w.s.BlobPath(info.Digest))); err != nil {
		return LayerInfo{}, fmt.Errorf("committing layer blob %s: %w", info.Digest, err)
	}
	return info, nil
}

func (w *layerWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.comp != nil {
		w.comp.Close()
	}
	w.f.Close()
	os.Remove(w.f.Name())
}
