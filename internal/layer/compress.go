package layer

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/xi2/xz"
)

// MaxWindow bounds the memory a compressed stream can make Decompress use: the
// zstd window and the xz (LZMA2) dictionary a stream asks for must not exceed
// it. zstd --ultra -22 and xz -9 stay below it (128 MiB and 64 MiB); a larger
// request is an error wrapping ErrWindowTooLarge, not an allocation.
const MaxWindow = 128 << 20

// ErrWindowTooLarge is wrapped by the error of a stream that needs more than MaxWindow.
var ErrWindowTooLarge = errors.New("compression window larger than the limit")

// Compression kinds accepted by Compress.
const (
	Gzip = "gzip"
	Zstd = "zstd"
	None = "none"
)

// ErrUnknownCompression is returned by Compress for an unknown kind.
var ErrUnknownCompression = errors.New("unknown compression")

// gzipBlockSize is the size of the independently compressed pgzip blocks.
// The output depends on it (and on nothing else but the level and the
// input), so it is fixed: how many blocks run at once only changes speed.
const gzipBlockSize = 1 << 20

// Compress returns a writer that compresses into w with kind: "gzip"
// (parallel pgzip on all cores, default level), "zstd" (default level,
// all cores) or "none" (also ""). Closing the returned writer flushes the
// compressed stream; it never closes w.
//
// The output is a function of the input alone: not of how it is cut into
// writes, nor of GOMAXPROCS. The gzip header carries no name, no time and
// no comment; zstd runs at a fixed level without a dictionary. Reproducible
// digests rely on this.
func Compress(w io.Writer, kind string) (io.WriteCloser, error) {
	switch kind {
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("starting gzip: %w", err)
		}
		// No name, comment or extra field, and MTIME 0 ("no time stamp"):
		// pgzip's zero ModTime would write the low bits of year 1 instead.
		zw.ModTime = time.Unix(0, 0)
		if err := zw.SetConcurrency(gzipBlockSize, max(runtime.GOMAXPROCS(0), 2)); err != nil {
			return nil, fmt.Errorf("starting gzip: %w", err)
		}
		return zw, nil
	case Zstd:
		// Plain stream encoding (no concurrent jobs): blocks are cut by size
		// alone, so the concurrency only changes how many are in flight.
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithConcurrentBlocks(false))
		if err != nil {
			return nil, fmt.Errorf("starting zstd: %w", err)
		}
		return zw, nil
	case None, "":
		return nopWriteCloser{w}, nil
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCompression, kind)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08} // magic, deflate
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	bzipBlock  = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59} // after "BZh" and the level digit
	bzipEnd    = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90} // ditto, for an empty stream
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Decompress sniffs the stream r for gzip, zstd, bzip2 or xz and returns a
// reader of the decompressed bytes; anything else is passed through as is.
// Its memory is bounded whatever r holds (see MaxWindow).
// Closing the returned reader releases the decompressor (goroutines and
// buffers); it never closes r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(10)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("sniffing compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(MaxWindow))
		if err != nil {
			return nil, fmt.Errorf("opening zstd stream: %w", err)
		}
		return zstdReader{zr.IOReadCloser()}, nil
	case len(head) == 10 && bytes.HasPrefix(head, magicBzip2) && head[3] >= '1' && head[3] <= '9' &&
		(bytes.Equal(head[4:], bzipBlock) || bytes.Equal(head[4:], bzipEnd)):
		// The block (or end) magic keeps a plain tar whose first name starts
		// with "BZh" from being taken for bzip2.
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, magicXz):
		zr, err := xz.NewReader(br, MaxWindow)
		if err != nil {
			return nil, fmt.Errorf("opening xz stream: %w", xzError(err))
		}
		return io.NopCloser(xzReader{zr}), nil
	default:
		return io.NopCloser(br), nil
	}
}

// zstdReader names the window limit in the error of a zstd stream that passes it.
type zstdReader struct{ io.ReadCloser }

func (r zstdReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("zstd: %w (%d MiB): %v", ErrWindowTooLarge, MaxWindow>>20, err)
	}
	return n, err
}

// xzReader names the window limit in the error of an xz stream that passes it.
type xzReader struct{ r *xz.Reader }

func (r xzReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	return n, xzError(err)
}

func xzError(err error) error {
	if errors.Is(err, xz.ErrMemlimit) {
		return fmt.Errorf("xz: %w (%d MiB): %v", ErrWindowTooLarge, MaxWindow>>20, err)
	}
	return err
}
