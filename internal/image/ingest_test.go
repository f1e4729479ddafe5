package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/regtest"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
)

// dockerArchive writes an old-style docker save archive (layer tars stored
// plain, as docker writes them) of one image whose layers are layerTars and
// whose config declares diffIDs.
func dockerArchive(t *testing.T, p string, layerTars [][]byte, diffIDs []v1.Hash) {
	t.Helper()
	cfg, err := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	var names []string
	for k, l := range layerTars {
		n := filepath.Join(strings.Repeat("x", k+1), "layer.tar")
		add(n, l)
		names = append(names, n)
	}
	add("config.json", cfg)
	m, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"example.com/a:1"}, "Layers": names}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, buf.Bytes())
}

func oneFileTar(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	io.WriteString(tw, body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func blobNames(t *testing.T, st *store.Store) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(st.Root(), "blobs", "sha256"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestImportUnpacksEveryLayer checks that an import leaves each layer both as
// exactly one blob and as its unpacked directory, so the first build on the
// image unpacks nothing; a rootfs tarball's blob is the tar itself.
func TestImportUnpacksEveryLayer(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	rootfs := rootfsTar(t)
	l1, l2 := oneFileTar(t, "a", "one"), oneFileTar(t, "b", "two")
	src := ociRandom(t)
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, dir string) string
		plain bool // every layer blob is the tar itself
	}{
		{"rootfs tar", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar"), rootfs)
		}, true},
		{"rootfs tar.gz", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar.gz"), compressWith(t, "gzip", rootfs))
		}, true},
		{"rootfs tar.zst", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar.zst"), compressWith(t, "zstd", rootfs))
		}, true},
		{"docker-archive, plain layers", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "d.tar")
			dockerArchive(t, p, [][]byte{l1, l2}, []v1.Hash{sha(l1), sha(l2)})
			return p
		}, true},
		{"oci layout, gzip layers", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "layout")
			lp, err := layout.Write(p, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := lp.AppendImage(src); err != nil {
				t.Fatal(err)
			}
			return p
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			var lines []string
			ctx := WithLogf(context.Background(), func(f string, a ...any) { lines = append(lines, f) })
			h, err := Import(ctx, st, tc.make(t, t.TempDir()), "x:1")
			if err != nil {
				t.Fatal(err)
			}
			img, err := st.Image(h.String())
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			want := []string{h.Hex, m.Config.Digest.Hex}
			for k, d := range m.Layers {
				want = append(want, d.Digest.Hex)
				diffID := cf.RootFS.DiffIDs[k]
				if _, ok := st.LayerDirPath(diffID); !ok {
					t.Errorf("layer %d (%s) is not unpacked after the import", k, diffID)
				}
				if tc.plain && (d.Digest != diffID || d.MediaType != types.OCIUncompressedLayer) {
					t.Errorf("layer %d stored as %s %s, want the plain tar (digest = diffID %s)", k, d.MediaType, d.Digest, diffID)
				}
			}
			got := blobNames(t, st)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("blobs %v, want exactly manifest, config and one per layer %v", got, want)
			}
			if tmp, _ := os.ReadDir(filepath.Join(st.Root(), "tmp")); len(tmp) != 0 {
				t.Errorf("import left %d temporaries", len(tmp))
			}
			if !slices.ContainsFunc(lines, func(s string) bool { return strings.HasPrefix(s, "unpacked layer") }) {
				t.Errorf("no unpack progress reported: %q", lines)
			}
		})
	}
}

// TestImportRefusesWrongDiffID imports docker-archives whose layer content is
// not what the config declares: refused, leaving no blob, no layer directory
// and no temporary in the store.
func TestImportRefusesWrongDiffID(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	good, evil := oneFileTar(t, "a", "one"), oneFileTar(t, "a", "evil")
	for _, tc := range []struct {
		name   string
		layers [][]byte
		diffs  []v1.Hash
	}{
		{"only layer", [][]byte{evil}, []v1.Hash{sha(good)}},
		{"second layer", [][]byte{good, evil}, []v1.Hash{sha(good), sha(good)}},
		{"gzip layer", [][]byte{compressWith(t, "gzip", evil)}, []v1.Hash{sha(good)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			p := filepath.Join(t.TempDir(), "d.tar")
			dockerArchive(t, p, tc.layers, tc.diffs)
			_, err := Import(context.Background(), st, p, "x:1")
			if !errors.Is(err, store.ErrDigestMismatch) {
				t.Fatalf("import: %v, want an error wrapping ErrDigestMismatch", err)
			}
			// A good first layer may stay (it is correct content); the bad one must not.
			for _, n := range blobNames(t, st) {
				if n == sha(evil).Hex || n == sha(compressWith(t, "gzip", evil)).Hex {
					t.Errorf("the refused layer's blob %s stayed", n)
				}
			}
			if _, ok := st.LayerDirPath(sha(evil)); ok {
				t.Error("the refused layer's directory stayed")
			}
			if ents, _ := os.ReadDir(filepath.Join(st.Root(), "layers")); len(ents) > len(tc.layers)-1 {
				t.Errorf("layers/ holds %d dirs after a refused import", len(ents))
			}
			if tmp, _ := os.ReadDir(filepath.Join(st.Root(), "tmp")); len(tmp) != 0 {
				t.Errorf("refused import left %d temporaries", len(tmp))
			}
			if _, err := st.Image("docker.io/library/x:1"); err == nil {
				t.Error("the refused image was named")
			}
		})
	}
}

// storedAs stores the one-layer image of tarData with its layer compressed
// as c (none: as IngestLayer stores a rootfs import).
func storedAs(t *testing.T, st *store.Store, tarData []byte, c store.Compression) v1.Image {
	t.Helper()
	var info store.LayerInfo
	if c == store.None {
		got, err := st.IngestLayer(context.Background(), bytes.NewReader(tarData), store.IngestSpec{})
		if err != nil {
			t.Fatal(err)
		}
		info = got.LayerInfo
	} else {
		lw, err := st.NewLayerWriter(c)
		if err != nil {
			t.Fatal(err)
		}
		lw.Write(tarData)
		if info, err = lw.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	img, err := rootfsImage(st, info, Platform(), time.Unix(1700000000, 0), "test")
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.WriteImage(img)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Image(h.String())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOutputsIgnoreHowLayersAreStored pushes (to a real registry) and exports
// (OCI archive) one image whose layer is stored uncompressed, gzip or zstd,
// asking for gzip and for zstd: the manifests and blobs the registry gets and
// the archives written are byte-identical whichever way the layer was stored.
func TestOutputsIgnoreHowLayersAreStored(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	host := regtest.Start(t, regtest.Options{})
	ctx := context.Background()
	tarData := bytes.Repeat(rootfsTar(t), 1)
	for _, want := range []store.Compression{store.Gzip, store.Zstd} {
		var manifests, archives [][]byte
		var layerBlobs [][]byte
		for _, storedWith := range []store.Compression{store.None, store.Gzip, store.Zstd} {
			st := openStore(t)
			img := storedAs(t, st, tarData, storedWith)
			ref := host + "/t/" + string(want) + "-" + string(storedWith) + ":1"
			d, err := (&Registry{}).Push(ctx, st, img, ref, want)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := (&Registry{}).Ref(ref)
			desc, err := remote.Get(r, (&Registry{}).Options(ctx)...)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != d {
				t.Errorf("Push returned %s, the registry holds %s", d, desc.Digest)
			}
			pimg, err := desc.Image()
			if err != nil {
				t.Fatal(err)
			}
			m, err := pimg.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if mt, _ := want.MediaType(); m.Layers[0].MediaType != mt {
				t.Errorf("stored %s, pushed as %s: layer media type %s", storedWith, want, m.Layers[0].MediaType)
			}
			l, _ := pimg.LayerByDigest(m.Layers[0].Digest)
			rc, _ := l.Compressed()
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			manifests = append(manifests, desc.Manifest)
			layerBlobs = append(layerBlobs, b)
			p := filepath.Join(t.TempDir(), "o.tar")
			if err := WriteOutputCompressed(ctx, st, img, "type=oci,dest="+p, []string{"a:1"}, want); err != nil {
				t.Fatal(err)
			}
			a, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			archives = append(archives, a)
		}
		for k := 1; k < len(manifests); k++ {
			if !bytes.Equal(manifests[k], manifests[0]) {
				t.Errorf("%s push: manifest of the layer stored %d differs:\n%s\n%s", want, k, manifests[k], manifests[0])
			}
			if !bytes.Equal(layerBlobs[k], layerBlobs[0]) {
				t.Errorf("%s push: layer blob of the layer stored %d differs", want, k)
			}
			if !bytes.Equal(archives[k], archives[0]) {
				t.Errorf("%s OCI archive of the layer stored %d differs", want, k)
			}
		}
	}
}

// TestPullUnpacks pulls an image and checks that every layer is unpacked as
// it arrives (the first build on it unpacks nothing) and that the pull's
// progress names each unpack.
func TestPullUnpacks(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	host := startRegistry(t)
	ctx := context.Background()
	src := ociRandom(t)
	if _, err := (&Registry{}).PushImage(ctx, src, host+"/p/img:1"); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	var lines []string
	img, err := Pull(ctx, st, host+"/p/img:1", func(f string, a ...any) { lines = append(lines, f) })
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, src) {
		t.Errorf("pulled %s, pushed %s", digestOf(t, img), digestOf(t, src))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range cf.RootFS.DiffIDs {
		if _, ok := st.LayerDirPath(d); !ok {
			t.Errorf("layer %s not unpacked by the pull", d)
		}
	}
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "unpacked layer") {
			n++
		}
	}
	if n != len(cf.RootFS.DiffIDs) {
		t.Errorf("%d unpack lines for %d layers: %q", n, len(cf.RootFS.DiffIDs), lines)
	}
}

func sha(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

// TestImportKeepsAnalysis: an import (a rootfs tarball, or an image whose layers
// are pulled from a layout as a registry's would be) analyses each layer for the build
// summary while it unpacks it, and keeps the analysis under the diffID: a report on the
// imported image then reads no layer, and says what reading the layers says.
func TestImportKeepsAnalysis(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	rootfs := rootfsTar(t)
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string) string
	}{
		{"rootfs tar", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar"), rootfs)
		}},
		{"rootfs tar.gz", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar.gz"), compressWith(t, "gzip", rootfs))
		}},
		{"oci layout, gzip layers", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "layout")
			lp, err := layout.Write(p, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := lp.AppendImage(ociRandom(t)); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			h, err := Import(context.Background(), st, tc.make(t, t.TempDir()), "x:1")
			if err != nil {
				t.Fatal(err)
			}
			img, err := st.Image(h.String())
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			for k, d := range cf.RootFS.DiffIDs {
				if _, err := st.GetCache(report.LayerKey(d.String())); err != nil {
					t.Errorf("no analysis kept for layer %d: %v", k, err)
				}
			}
			want, err := report.AnalyzeContext(context.Background(), img, report.Options{Name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := report.ImageLayers(img)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ls {
				ls[i].Open = func() (io.ReadCloser, error) {
					t.Errorf("layer %d read although its analysis was kept", i)
					return nil, errors.New("not to be read")
				}
			}
			got, err := report.AnalyzeLayers(context.Background(), img, ls, report.Options{Name: "x", Cache: st})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("report from the kept analyses differs from reading the layers:\n%+v\n%+v", want, got)
			}
		})
	}
}
