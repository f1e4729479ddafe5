package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
)

func gzipOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := layer.Compress(&buf, layer.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storeContents lists what the store holds outside its metadata: blobs, layer
// dirs and temporaries.
func storeContents(t *testing.T, s *Store) (blobs, layers, tmp []string) {
	t.Helper()
	return dirNames(t, s.path("blobs", "sha256")), dirNames(t, s.path("layers")), dirNames(t, s.path("tmp"))
}

// TestIngestLayer checks that one pass stores the blob exactly as given and
// its unpacked directory, for plain and compressed blobs.
func TestIngestLayer(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	tarData := tarOf(t, map[string]string{"etc/hostname": "box\n"}, "etc/hostname")
	gz := gzipOf(t, tarData)
	for _, tc := range []struct {
		name string
		blob []byte
		spec IngestSpec
	}{
		{"plain tar, nothing declared", tarData, IngestSpec{}},
		{"plain tar, diffID declared", tarData, IngestSpec{DiffID: sha(tarData), Digest: sha(tarData), Size: int64(len(tarData))}},
		{"gzip, all declared", gz, IngestSpec{MediaType: types.OCILayer, Digest: sha(gz), Size: int64(len(gz)), DiffID: sha(tarData)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			got, err := s.IngestLayer(context.Background(), bytes.NewReader(tc.blob), tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != sha(tc.blob) || got.DiffID != sha(tarData) || got.Size != int64(len(tc.blob)) || got.TarBytes != int64(len(tarData)) || !got.Unpacked {
				t.Errorf("ingested %+v", got)
			}
			b, err := os.ReadFile(s.BlobPath(got.Digest))
			if err != nil || !bytes.Equal(b, tc.blob) {
				t.Errorf("blob differs from what was given (err %v)", err)
			}
			if h, err := os.ReadFile(filepath.Join(got.Dir, "etc", "hostname")); err != nil || string(h) != "box\n" {
				t.Errorf("unpacked etc/hostname = %q, %v", h, err)
			}
			if p, ok := s.LayerDirPath(sha(tarData)); !ok || p != got.Dir {
				t.Errorf("layer dir %q not in the store (%v)", got.Dir, ok)
			}
			blobs, layers, tmp := storeContents(t, s)
			if len(blobs) != 1 || len(layers) != 1 || len(tmp) != 0 {
				t.Errorf("store holds blobs %v, layers %v, tmp %v; want one blob, one dir, no temporaries", blobs, layers, tmp)
			}
			// Again: the directory is there, so nothing is unpacked.
			// The spec's Tar writer gets the uncompressed tar, whole, also when
			// nothing is unpacked.
			var seen bytes.Buffer
			again, err := s.IngestLayer(context.Background(), bytes.NewReader(tc.blob), IngestSpec{MediaType: tc.spec.MediaType, DiffID: sha(tarData), Tar: &seen})
			if err != nil || again.Unpacked || again.Dir != got.Dir {
				t.Errorf("second ingest: %+v, %v", again, err)
			}
			if !bytes.Equal(seen.Bytes(), tarData) {
				t.Errorf("Tar got %d bytes, want the %d of the uncompressed tar", seen.Len(), len(tarData))
			}
		})
	}
}

// TestIngestLayerRefuses feeds blobs that do not match what their descriptor
// declares, or are cut short: each is refused and leaves no blob, no layer
// directory and no temporary.
func TestIngestLayerRefuses(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	tarData := tarOf(t, map[string]string{"etc/hostname": "box\n"}, "etc/hostname")
	other := tarOf(t, map[string]string{"etc/hostname": "evil\n"}, "etc/hostname")
	gz := gzipOf(t, tarData)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		blob []byte
		spec IngestSpec
		want error
	}{
		{"content not the declared diffID", context.Background(), other, IngestSpec{DiffID: sha(tarData)}, ErrDigestMismatch},
		{"gzip of another tar", context.Background(), gzipOf(t, other), IngestSpec{MediaType: types.OCILayer, DiffID: sha(tarData)}, ErrDigestMismatch},
		{"blob not the declared digest", context.Background(), gz, IngestSpec{MediaType: types.OCILayer, Digest: sha(tarData)}, ErrDigestMismatch},
		{"blob longer than declared", context.Background(), gz, IngestSpec{MediaType: types.OCILayer, Size: int64(len(gz)) - 1}, ErrDigestMismatch},
		{"blob shorter than declared", context.Background(), gz, IngestSpec{MediaType: types.OCILayer, Size: int64(len(gz)) + 1}, ErrDigestMismatch},
		{"uncompressed type holding gzip", context.Background(), gz, IngestSpec{MediaType: types.OCIUncompressedLayer, DiffID: sha(tarData)}, nil},
		{"cancelled", cancelled, tarData, IngestSpec{}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.IngestLayer(tc.ctx, bytes.NewReader(tc.blob), tc.spec)
			if err == nil {
				t.Fatal("ingested")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want one wrapping %v", err, tc.want)
			}
			blobs, layers, tmp := storeContents(t, s)
			if len(blobs)+len(layers)+len(tmp) != 0 {
				t.Errorf("refused ingest left blobs %v, layers %v, tmp %v", blobs, layers, tmp)
			}
		})
	}
}

// TestIngestLayerHostile sends tars that try to write outside the layer
// directory through IngestLayer: each is refused or kept inside, and nothing
// appears outside the store.
func TestIngestLayerHostile(t *testing.T) {
	outside := t.TempDir()
	mk := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			body := ""
			if h.Typeflag == tar.TypeReg {
				body = "pwned"
				h.Size = int64(len(body))
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			io.WriteString(tw, body)
		}
		tw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name string
		tar  []byte
	}{
		{"dotdot", mk(&tar.Header{Name: "../../../../../../" + outside + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644})},
		{"absolute symlink parent", mk(
			&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "link/abs", Typeflag: tar.TypeReg, Mode: 0o644})},
		{"relative symlink parent", mk(
			&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../.." + outside},
			&tar.Header{Name: "link/rel", Typeflag: tar.TypeReg, Mode: 0o644})},
		{"hard link to outside", mk(&tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			s.IngestLayer(context.Background(), bytes.NewReader(tc.tar), IngestSpec{})
			if names, _ := os.ReadDir(outside); len(names) != 0 {
				t.Fatalf("ingest wrote outside the store: %v", names)
			}
			if b, _ := os.ReadFile("/etc/passwd"); bytes.Contains(b, []byte("pwned")) {
				t.Fatal("ingest wrote /etc/passwd")
			}
		})
	}
}
