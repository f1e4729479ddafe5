package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// IngestSpec describes a layer blob handed to IngestLayer: what it is and
// what it must turn out to be.
type IngestSpec struct {
	// MediaType is the blob's layer media type, recorded as given. An
	// uncompressed layer type (also the default, when empty) means the blob
	// is the tar itself, read as is. For any other type the content decides:
	// a gzip, zstd, bzip2 or xz stream is decompressed, anything else is
	// taken as a plain tar (the diffID check catches a lie either way).
	MediaType types.MediaType
	// Digest, when set, is the digest the blob must have.
	Digest v1.Hash
	// Size, when positive, is the size the blob must have; reading stops
	// one byte past it, so a stream that lies about its size costs no more.
	Size int64
	// DiffID, when set, is the digest the uncompressed tar must have.
	DiffID v1.Hash
	// Tar, when set, is given the uncompressed tar as it is read, all of it
	// (what the diffID is the digest of), from a goroutine of IngestLayer's; a
	// write error fails the ingest. The caller's analysis of the layer rides
	// on the same pass.
	Tar io.Writer
}

// Ingested is what IngestLayer stored.
type Ingested struct {
	LayerInfo
	Dir      string // the unpacked layer directory, ROOT/layers/HEX
	TarBytes int64  // size of the uncompressed tar
	Unpacked bool   // false when the directory was in the store already
}

// ErrDigestMismatch is wrapped by IngestLayer's error when the blob or its
// uncompressed tar does not hash (or count) to what the spec declares.
var ErrDigestMismatch = errors.New("content does not match its descriptor")

// IngestLayer stores one layer in a single pass over r: the blob is written,
// exactly as read, to a temporary file while it is hashed (digest), decompressed
// when it is compressed, hashed again (diffID) and unpacked into a temporary
// directory. Reading r runs in its own goroutine, ahead of the rest by a few
// MiB, so that reading and decompressing overlap with writing files. When
// everything matches spec, one syncfs(2) puts the blob and the tree on disk,
// and both are renamed into place (blobs/sha256/DIGEST, layers/DIFFID). On any
// error, cancellation included, nothing is left behind: not the blob, not the
// directory, not a temporary.
//
// When the layer's directory is in the store already (spec.DiffID known), the
// tar is hashed but not unpacked again. r is read to its end and not closed.
func (s *Store) IngestLayer(ctx context.Context, r io.Reader, spec IngestSpec) (Ingested, error) {
	mt := spec.MediaType
	if mt == "" {
		mt = types.OCIUncompressedLayer
	}
	if spec.DiffID != (v1.Hash{}) && !validHash(spec.DiffID) {
		return Ingested{}, fmt.Errorf("ingesting layer: bad diffID %q", spec.DiffID)
	}
	if spec.Digest != (v1.Hash{}) && !validHash(spec.Digest) {
		return Ingested{}, fmt.Errorf("ingesting layer: bad digest %q", spec.Digest)
	}
	name := spec.Digest
	if name == (v1.Hash{}) {
		name = spec.DiffID
	}
	if err := s.hold(spec.Digest, spec.DiffID); err != nil {
		return Ingested{}, fmt.Errorf("ingesting layer %s: %w", name, err)
	}
	wrap := func(err error) error {
		if name == (v1.Hash{}) {
			return fmt.Errorf("ingesting layer: %w", err)
		}
		return fmt.Errorf("ingesting layer %s: %w", name, err)
	}
	var unpack = true
	if spec.DiffID != (v1.Hash{}) {
		if _, ok := s.LayerDirPath(spec.DiffID); ok {
			unpack = false
		}
	}

	f, err := s.tempFile("ingest-")
	if err != nil {
		return Ingested{}, wrap(err)
	}
	// Two goroutines besides this one, each a few MiB ahead of the next:
	//   read the source, hash (digest) and write the blob     (raw)
	//   decompress, hash the tar (diffID)                     (tarStream; compressed blobs only)
	//   unpack                                                 (this goroutine)
	// A plain tar blob is its own tar: hashed once, digest = diffID.
	src := r
	if spec.Size > 0 {
		src = io.LimitReader(r, spec.Size+1)
	}
	blobHash := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	blob := &countWriter{w: io.MultiWriter(bw, blobHash)}
	if spec.Tar != nil && IsUncompressed(mt) {
		blob.w = io.MultiWriter(bw, blobHash, spec.Tar)
	}
	raw := newReadAhead(ctx, io.TeeReader(src, blob))
	var (
		tarStream io.Reader = raw
		tarHash             = blobHash
		tarCount            = blob
		dec       io.ReadCloser
		tarAhead  *readAhead
		tmpDir    string
	)
	// stop ends the goroutines; after it nothing writes to the blob.
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if tarAhead != nil {
			tarAhead.Close()
		}
		if dec != nil {
			dec.Close()
		}
		raw.Close()
	}
	fail := func(err error) (Ingested, error) {
		stop()
		f.Close()
		os.Remove(f.Name())
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
		return Ingested{}, wrap(err)
	}
	if !IsUncompressed(mt) {
		if dec, err = layer.Decompress(raw); err != nil {
			return fail(err)
		}
		tarHash = sha256.New()
		tarCount = &countWriter{w: tarHash}
		if spec.Tar != nil {
			tarCount.w = io.MultiWriter(tarHash, spec.Tar)
		}
		tarAhead = newReadAhead(ctx, io.TeeReader(dec, tarCount))
		tarStream = tarAhead
	}
	if unpack {
		if tmpDir, err = s.TempDir("ingest-"); err != nil {
			return fail(err)
		}
		if err := os.Chmod(tmpDir, 0o755); err != nil {
			return fail(err)
		}
		if err := layer.Unpack(tarStream, tmpDir); err != nil {
			return fail(ctxErr(ctx, err))
		}
	}
	// The rest of the tar (padding past the end marker, or all of it when the
	// directory exists), then the rest of a compressed stream's trailer.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return fail(ctxErr(ctx, fmt.Errorf("reading layer: %w", err)))
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return fail(ctxErr(ctx, fmt.Errorf("reading layer: %w", err)))
	}
	stop()
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("writing blob: %w", err))
	}
	info := LayerInfo{
		Digest:    sumOf(blobHash),
		DiffID:    sumOf(tarHash),
		Size:      blob.n,
		MediaType: mt,
	}
	switch {
	case spec.Size > 0 && info.Size != spec.Size:
		return fail(fmt.Errorf("%w: blob of %d bytes, descriptor says %d", ErrDigestMismatch, info.Size, spec.Size))
	case spec.Digest != (v1.Hash{}) && info.Digest != spec.Digest:
		return fail(fmt.Errorf("%w: blob has digest %s", ErrDigestMismatch, info.Digest))
	case spec.DiffID != (v1.Hash{}) && info.DiffID != spec.DiffID:
		return fail(fmt.Errorf("%w: uncompressed content has digest %s, diffID %s declared", ErrDigestMismatch, info.DiffID, spec.DiffID))
	}
	if name == (v1.Hash{}) {
		name = info.Digest
	}
	if err := s.hold(info.Digest, info.DiffID); err != nil {
		return fail(err)
	}
	_ = os.Chmod(f.Name(), 0o644)
	// One syncfs for the blob and every file of the tree, before either name appears.
	if err := s.syncFS(); err != nil {
		return fail(err)
	}
	// Same digest means same bytes: replacing an existing blob is harmless.
	if err := os.Rename(f.Name(), s.BlobPath(info.Digest)); err != nil {
		return fail(fmt.Errorf("committing blob: %w", err))
	}
	if err := SyncDir(filepath.Dir(s.BlobPath(info.Digest))); err != nil {
		return Ingested{}, wrap(err)
	}
	out := Ingested{LayerInfo: info, TarBytes: tarCount.n, Unpacked: tmpDir != ""}
	if tmpDir == "" {
		out.Dir, _ = s.LayerDirPath(info.DiffID)
		return out, nil
	}
	dir, err := s.adopt(info.DiffID, tmpDir, false)
	if err != nil {
		os.RemoveAll(tmpDir)
		return Ingested{}, wrap(err)
	}
	out.Dir = dir
	return out, nil
}

// IsUncompressed reports whether mt is a media type of plain tar layers.
func IsUncompressed(mt types.MediaType) bool {
	return mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer ||
		mt == types.OCIUncompressedRestrictedLayer
}

func sumOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// ctxErr prefers the context's error: a read cut short by cancellation shows
// as the cancellation, not as a truncated tar.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// readAhead reads its source in a goroutine, up to readAheadBufs buffers of
// readAheadSize ahead of its reader, so that reading (and decompressing) the
// source overlaps with what the reader does with the bytes. Memory is bounded
// by the buffers in flight. Close stops the goroutine; it does not close the source.
type readAhead struct {
	ctx  context.Context
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{}
	err  error // set by the goroutine before it closes full
	cur  []byte
	back []byte // the buffer cur is a slice of, to recycle
}

const (
	readAheadSize = 1 << 20
	readAheadBufs = 4
)

func newReadAhead(ctx context.Context, src io.Reader) *readAhead {
	ra := &readAhead{
		ctx:  ctx,
		full: make(chan []byte, readAheadBufs),
		free: make(chan []byte, readAheadBufs),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readAheadBufs {
		ra.free <- make([]byte, readAheadSize)
	}
	go ra.run(src)
	return ra
}

func (ra *readAhead) run(src io.Reader) {
	defer close(ra.done)
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		case <-ra.ctx.Done():
			ra.err = ra.ctx.Err()
			return
		}
		n, err := io.ReadFull(src, buf[:cap(buf)])
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if err := ra.ctx.Err(); err != nil {
		return 0, err
	}
	for len(ra.cur) == 0 {
		if ra.back != nil {
			ra.free <- ra.back[:cap(ra.back)]
			ra.back = nil
		}
		buf, ok := <-ra.full
		if !ok {
			if ra.err != nil {
				return 0, ra.err
			}
			if err := ra.ctx.Err(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		ra.cur, ra.back = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the read-ahead goroutine and waits for it.
func (ra *readAhead) Close() {
	select {
	case <-ra.stop:
	default:
		close(ra.stop)
	}
	<-ra.done
}
