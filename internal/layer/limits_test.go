package layer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// zstdFrame is a one-byte zstd frame whose header asks for a window of 1<<windowLog bytes.
func zstdFrame(windowLog int) []byte {
	return []byte{0x28, 0xb5, 0x2f, 0xfd, // magic
		0x00,                        // no content size, not single-segment, no checksum
		byte((windowLog - 10) << 3), // window descriptor: exponent, mantissa 0
		0x09, 0x00, 0x00,            // last block, raw, 1 byte
		'a'}
}

// xzWithDict makes an xz stream of data with the system's xz, then rewrites its
// first block header to claim an LZMA2 dictionary of code dictCode (the
// stream stays valid: the header's CRC32 is recomputed).
func xzWithDict(t *testing.T, data []byte, dictCode byte) []byte {
	t.Helper()
	path, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("machine lacks xz (apt-get install xz-utils)")
	}
	cmd := exec.Command(path, "-c", "--check=crc32")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	must(t, err)
	hdr := out[12:]
	size := (int(hdr[0]) + 1) * 4
	flags := hdr[1]
	pos := 2
	for _, bit := range []byte{0x40, 0x80} { // compressed and uncompressed sizes
		if flags&bit != 0 {
			_, n := binary.Uvarint(hdr[pos:])
			pos += n
		}
	}
	if hdr[pos] != 0x21 || hdr[pos+1] != 0x01 {
		t.Fatalf("unexpected filter flags % x", hdr[pos:pos+3])
	}
	hdr[pos+2] = dictCode
	binary.LittleEndian.PutUint32(hdr[size-4:size], crc32.ChecksumIEEE(hdr[:size-4]))
	return out
}

// TestDecompressWindowLimit: a stream that asks for a window larger than
// MaxWindow is an error, not an allocation; streams within it decode.
func TestDecompressWindowLimit(t *testing.T) {
	data := []byte(strings.Repeat("slimbuild ", 1000))
	tests := []struct {
		name    string
		stream  func(t *testing.T) []byte
		want    []byte
		tooMuch bool
	}{
		{"zstd 8 MiB window", func(*testing.T) []byte { return zstdFrame(23) }, []byte("a"), false},
		{"zstd 128 MiB window", func(*testing.T) []byte { return zstdFrame(27) }, []byte("a"), false},
		{"zstd 256 MiB window", func(*testing.T) []byte { return zstdFrame(28) }, nil, true},
		{"zstd 2 GiB window", func(*testing.T) []byte { return zstdFrame(31) }, nil, true},
		{"xz 64 MiB dictionary", func(t *testing.T) []byte { return xzWithDict(t, data, 28) }, data, false},
		{"xz 256 MiB dictionary", func(t *testing.T) []byte { return xzWithDict(t, data, 32) }, nil, true},
		{"xz 4 GiB dictionary", func(t *testing.T) []byte { return xzWithDict(t, data, 40) }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.stream(t)))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
			if tt.tooMuch {
				if !errors.Is(err, ErrWindowTooLarge) {
					t.Fatalf("got %d bytes and error %v, want ErrWindowTooLarge", len(got), err)
				}
				return
			}
			must(t, err)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// TestDecompressLongZstd: a real zstd stream with the largest allowed window decodes.
func TestDecompressLongZstd(t *testing.T) {
	path, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("machine lacks zstd")
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	cmd := exec.Command(path, "-c", "--long=27", "-3")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	must(t, err)
	roundTrip(t, out, data)
}
