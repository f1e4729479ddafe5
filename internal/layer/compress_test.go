package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestCompress(t *testing.T) {
	data := []byte(strings.Repeat("slimbuild layer ", 200_000) + randomString(t, 1<<20))
	for _, kind := range []string{Gzip, Zstd, None, ""} {
		t.Run(kind, func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := Compress(&buf, kind)
			must(t, err)
			_, err = io.Copy(zw, bytes.NewReader(data))
			must(t, err)
			must(t, zw.Close())
			if kind != None && kind != "" && buf.Len() >= len(data) {
				t.Errorf("%s output %d bytes, not smaller than input %d", kind, buf.Len(), len(data))
			}
			roundTrip(t, buf.Bytes(), data)
		})
	}
	if _, err := Compress(io.Discard, "lz4"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("Compress(lz4) error %v, want ErrUnknownCompression", err)
	}
}

func roundTrip(t *testing.T, compressed, want []byte) {
	t.Helper()
	rc, err := Decompress(bytes.NewReader(compressed))
	must(t, err)
	got, err := io.ReadAll(rc)
	must(t, err)
	must(t, rc.Close())
	if !bytes.Equal(got, want) {
		t.Errorf("Decompress returned %d bytes, want the %d originals", len(got), len(want))
	}
}

// TestDecompressExternal sniffs streams made by the system's compressors.
func TestDecompressExternal(t *testing.T) {
	data := []byte(strings.Repeat("x", 100_000) + "end")
	for _, tool := range []string{"gzip", "zstd", "bzip2", "xz"} {
		t.Run(tool, func(t *testing.T) {
			path, err := exec.LookPath(tool)
			if err != nil {
				t.Skipf("machine lacks %s", tool)
			}
			for _, in := range [][]byte{data, nil} {
				cmd := exec.Command(path, "-c")
				cmd.Stdin = bytes.NewReader(in)
				out, err := cmd.Output()
				must(t, err)
				roundTrip(t, out, in)
			}
		})
	}
}

// TestDecompressPlain checks that tars are not mistaken for compressed
// streams, even when the first name looks like a magic number.
func TestDecompressPlain(t *testing.T) {
	for _, name := range []string{"BZh9", "BZh91AY", "plain", "\x1fgz"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 4, Format: tar.FormatUSTAR}))
		_, err := tw.Write([]byte("body"))
		must(t, err)
		must(t, tw.Close())
		if !bytes.HasPrefix(buf.Bytes(), []byte(name)) {
			t.Fatalf("tar does not start with %q", name)
		}
		roundTrip(t, buf.Bytes(), buf.Bytes())
	}
	roundTrip(t, nil, nil)
}
