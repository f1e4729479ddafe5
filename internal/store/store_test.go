package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tarOf builds an uncompressed tar holding the given files (name -> content).
func tarOf(t *testing.T, files map[string]string, order ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func writeLayer(t *testing.T, s *Store, c Compression, data []byte) LayerInfo {
	t.Helper()
	w, err := s.NewLayerWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	// Several writes, to exercise streaming.
	for off := 0; off < len(data); off += 1000 {
		if _, err := w.Write(data[off:min(off+1000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	w.Abort() // no-op after Commit
	return info
}

func TestLayerWriter(t *testing.T) {
	data := tarOf(t, map[string]string{"a": "hello", "b/c": string(bytes.Repeat([]byte("xyz"), 50000))}, "a", "b/c")
	for _, tc := range []struct {
		name string
		c    Compression
		mt   types.MediaType
	}{
		{"gzip", Gzip, types.OCILayer},
		{"zstd", Zstd, types.OCILayerZStd},
		{"none", None, types.OCIUncompressedLayer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			info := writeLayer(t, s, tc.c, data)
			blob, err := os.ReadFile(s.BlobPath(info.Digest))
			if err != nil {
				t.Fatal(err)
			}
			want := LayerInfo{DiffID: sha(data), Digest: sha(blob), Size: int64(len(blob)), MediaType: tc.mt}
			if info != want {
				t.Errorf("info = %+v, want %+v", info, want)
			}
			if tc.c == None && !bytes.Equal(blob, data) {
				t.Error("uncompressed blob differs from input")
			}
			if tc.c != None && len(blob) >= len(data) {
				t.Errorf("blob of %d bytes not compressed (input %d)", len(blob), len(data))
			}
			l, err := s.Layer(info)
			if err != nil {
				t.Fatal(err)
			}
			if tc.c == Gzip { // validate.Layer assumes gzip blobs
				if err := validate.Layer(l); err != nil {
					t.Error(err)
				}
			}
			if d, _ := l.DiffID(); d != info.DiffID {
				t.Errorf("Layer.DiffID = %s, want %s", d, info.DiffID)
			}
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("uncompressed round trip: err %v, equal %v", err, bytes.Equal(got, data))
			}
			if n := dirNames(t, s.path("tmp")); len(n) != 0 {
				t.Errorf("tmp/ not empty after commit: %v", n)
			}
		})
	}
}

func TestUnknownCompression(t *testing.T) {
	s := openStore(t)
	if _, err := s.NewLayerWriter("lz4"); err == nil {
		t.Fatal("NewLayerWriter(lz4) succeeded")
	}
}

func TestConcurrentLayerWriters(t *testing.T) {
	s := openStore(t)
	const n = 8
	datas := make([][]byte, n)
	for i := range datas {
		// Pairs share content, so two writers race to the same blob.
		datas[i] = tarOf(t, map[string]string{"f": fmt.Sprint("content ", i/2, string(bytes.Repeat([]byte{byte(i / 2)}, 100000)))}, "f")
	}
	infos := make([]LayerInfo, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.NewLayerWriter(Gzip)
			if err != nil {
				errs[i] = err
				return
			}
			if _, err := io.Copy(w, bytes.NewReader(datas[i])); err != nil {
				errs[i] = err
				return
			}
			infos[i], errs[i] = w.Commit()
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if infos[i].DiffID != sha(datas[i]) {
			t.Errorf("writer %d: diffID %s, want %s", i, infos[i].DiffID, sha(datas[i]))
		}
		blob, err := os.ReadFile(s.BlobPath(infos[i].Digest))
		if err != nil || sha(blob) != infos[i].Digest {
			t.Errorf("writer %d: blob %s missing or corrupt: %v", i, infos[i].Digest, err)
		}
	}
	if got := len(dirNames(t, s.path("blobs", "sha256"))); got != n/2 {
		t.Errorf("%d blobs, want %d", got, n/2)
	}
}

func TestAbortLeavesNoBlob(t *testing.T) {
	s := openStore(t)
	w, err := s.NewLayerWriter(Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(tarOf(t, map[string]string{"x": "y"}, "x")); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if n := dirNames(t, s.path("blobs", "sha256")); len(n) != 0 {
		t.Errorf("blobs after abort: %v", n)
	}
	if n := dirNames(t, s.path("tmp")); len(n) != 0 {
		t.Errorf("tmp/ after abort: %v", n)
	}
}

// TestHelperCrashingWriter is run as a child process by TestCrashSafety.
func TestHelperCrashingWriter(t *testing.T) {
	root := os.Getenv("SLIMBUILD_STORE_CRASH_ROOT")
	if root == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewLayerWriter(Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("partial layer "), 1<<18)); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	select {} // wait to be killed
}

func TestCrashSafety(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashingWriter$")
	cmd.Env = append(os.Environ(), "SLIMBUILD_STORE_CRASH_ROOT="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if n := dirNames(t, filepath.Join(root, "blobs", "sha256")); len(n) != 0 {
		t.Errorf("blobs after crash: %v", n)
	}
	if n := dirNames(t, filepath.Join(root, "tmp")); len(n) == 0 {
		t.Error("killed writer left nothing in tmp/; the test did not exercise a crash")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := dirNames(t, s.path("tmp")); len(n) != 0 {
		t.Errorf("tmp/ not cleaned by Open after crash: %v", n)
	}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("List after crash = %v, %v", l, err)
	}
}

func TestOpenKeepsTempsOfOtherProcesses(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, err := a.TempDir("busy-")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(root) // a still has the store open
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := os.Stat(d); err != nil {
		t.Errorf("second Open removed a live temp dir: %v", err)
	}
}

func randomImage(t *testing.T, oci bool) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	return img
}

func TestWriteImageRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		oci  bool
	}{{"docker media types", false}, {"oci media types", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			img := randomImage(t, tc.oci)
			want, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.WriteImage(img)
			if err != nil {
				t.Fatal(err)
			}
			if h != want {
				t.Fatalf("WriteImage = %s, want %s", h, want)
			}
			if _, err := s.WriteImage(img); err != nil { // idempotent
				t.Fatal(err)
			}
			const name = "example.com/test/img:v1"
			if err := s.Tag(name, h); err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{name, h.String()} {
				got, err := s.Image(ref)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(got); err != nil {
					t.Errorf("validate %s: %v", ref, err)
				}
				if d, _ := got.Digest(); d != h {
					t.Errorf("Image(%s).Digest = %s, want %s", ref, d, h)
				}
				wantMT, _ := img.MediaType()
				if mt, _ := got.MediaType(); mt != wantMT {
					t.Errorf("media type %s, want %s", mt, wantMT)
				}
			}
			// Other OCI tools can read the store.
			lp, err := layout.FromPath(s.Root())
			if err != nil {
				t.Fatal(err)
			}
			li, err := lp.Image(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(li); err != nil {
				t.Errorf("validate via layout.Path: %v", err)
			}
			ii, _ := lp.ImageIndex()
			im, _ := ii.IndexManifest()
			if len(im.Manifests) != 1 || im.Manifests[0].Annotations[RefNameAnnotation] != name {
				t.Errorf("index.json manifests = %+v", im.Manifests)
			}
		})
	}
}

func TestImageNotFound(t *testing.T) {
	s := openStore(t)
	for _, ref := range []string{"docker.io/library/nope:latest", "sha256:" + sha([]byte("x")).Hex} {
		if _, err := s.Image(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Image(%q) error = %v, want ErrNotFound", ref, err)
		}
	}
	if err := s.Tag("a:b", sha([]byte("x"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tag of missing manifest: %v, want ErrNotFound", err)
	}
	if err := s.Untag("a:b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Untag of missing name: %v, want ErrNotFound", err)
	}
}

func TestTagUntagList(t *testing.T) {
	s := openStore(t)
	a, err := s.WriteImage(randomImage(t, true))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.WriteImage(randomImage(t, true))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want []Entry
	}{
		{"tag x", func() error { return s.Tag("x", a) }, []Entry{{"x", a}}},
		{"tag y", func() error { return s.Tag("y", a) }, []Entry{{"x", a}, {"y", a}}},
		{"retag x", func() error { return s.Tag("x", b) }, []Entry{{"x", b}, {"y", a}}},
		{"untag y", func() error { return s.Untag("y") }, []Entry{{"x", b}}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("%s: List = %v, want %v", st.name, got, st.want)
		}
	}
}

func TestConcurrentTagsFromSeparateStores(t *testing.T) {
	root := t.TempDir()
	s0, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s0.Close()
	h, err := s0.WriteImage(randomImage(t, true))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root) // own lock file descriptions, like another process
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Tag(fmt.Sprintf("name%d", i), h)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := s0.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != n {
		t.Errorf("%d names after %d concurrent tags: %v", len(l), n, l)
	}
}

func TestLayerDir(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	s := openStore(t)
	data := tarOf(t, map[string]string{"etc/": "", "etc/hostname": "box\n"}, "etc/hostname")
	info := writeLayer(t, s, Gzip, data)
	l, err := s.Layer(info)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); paths[i], errs[i] = s.LayerDir(l) }()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != s.path("layers", info.DiffID.Hex) {
			t.Errorf("LayerDir = %q", paths[i])
		}
	}
	b, err := os.ReadFile(filepath.Join(paths[0], "etc", "hostname"))
	if err != nil || string(b) != "box\n" {
		t.Errorf("unpacked file: %q, %v", b, err)
	}
	if n := dirNames(t, s.path("tmp")); len(n) != 0 {
		t.Errorf("tmp/ after concurrent LayerDir: %v", n)
	}

	// A layer whose content does not match its diffID is refused and leaves nothing.
	bad := info
	bad.DiffID = sha([]byte("something else"))
	bl, _ := s.Layer(bad)
	if _, err := s.LayerDir(bl); err == nil {
		t.Error("LayerDir accepted content with the wrong diffID")
	}
	if _, ok := s.LayerDirPath(bad.DiffID); ok {
		t.Error("bad layer dir was put in place")
	}
	if n := dirNames(t, s.path("tmp")); len(n) != 0 {
		t.Errorf("tmp/ after failed LayerDir: %v", n)
	}
}

func TestAdoptLayerDir(t *testing.T) {
	s := openStore(t)
	h := sha([]byte("diff"))
	mk := func(content string) string {
		d, err := s.TempDir("adopt-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	first, second := mk("first"), mk("second")
	p, err := s.AdoptLayerDir(h, first)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.AdoptLayerDir(h, second)
	if err != nil || p2 != p {
		t.Fatalf("second adopt = %q, %v", p2, err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "f")); string(b) != "first" {
		t.Errorf("existing layer dir replaced: %q", b)
	}
	if _, err := os.Stat(second); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("losing dir not removed: %v", err)
	}
}

func TestCache(t *testing.T) {
	s := openStore(t)
	if _, err := s.GetCache("abcd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCache of missing key: %v", err)
	}
	for _, bad := range []string{"", "a", "ABCD", "../x", "ab/cd", "zz"} {
		if err := s.PutCache(bad, nil); err == nil {
			t.Errorf("PutCache(%q) accepted a bad key", bad)
		}
	}
	if err := s.PutCache("abcd", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCache("abcd", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetCache("abcd"); err != nil || string(v) != "v2" {
		t.Errorf("GetCache = %q, %v", v, err)
	}
	if err := s.DeleteCache("abcd"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCache("abcd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCache after delete: %v", err)
	}
}
