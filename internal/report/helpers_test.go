package report

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// tf is one tar entry of a test layer. A zero typ is a regular file; a zero mode is 0644
// for files and 0755 for directories.
type tf struct {
	name string
	typ  byte
	mode int64
	body string
	link string
	pax  map[string]string
}

func dir(name string, mode int64) tf        { return tf{name: name, typ: tar.TypeDir, mode: mode} }
func file(name, body string, mode int64) tf { return tf{name: name, mode: mode, body: body} }
func symlink(name, target string) tf {
	return tf{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func whiteout(name string) tf { return tf{name: name, body: ""} }

// elf is the start of an ELF executable: only the magic matters to the analysis.
func elf(n int) string { return "\x7fELF\x02\x01\x01" + strings.Repeat("\x00", max(n-7, 0)) }

func tarBytes(t testing.TB, files []tf) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link, ModTime: mt,
			PAXRecords: f.pax, Format: tar.FormatPAX}
		switch f.typ {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		case tar.TypeDir:
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("writing tar header %s: %v", f.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, files []tf) v1.Layer {
	t.Helper()
	return layerFromBytes(t, tarBytes(t, files))
}

// layerFromBytes makes a layer whose uncompressed stream is b, tar or not.
func layerFromBytes(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatalf("making layer: %v", err)
	}
	// Hide tarball's Descriptor method: its empty annotations map makes the in-memory
	// manifest differ from the marshalled one, which validate.Image rejects.
	return plainLayer{l}
}

type plainLayer struct{ v1.Layer }

// testLayer is a layer of a test image and the instruction that made it.
type testLayer struct {
	createdBy string
	files     []tf
}

// buildImage makes an image of the given layers (each with a history entry, plus an empty
// layer entry before each to exercise history matching) and config user, and validates it.
func buildImage(t testing.TB, user string, layers ...testLayer) v1.Image {
	t.Helper()
	img := empty.Image
	var adds []mutate.Addendum
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{Layer: layerOf(t, l.files), History: v1.History{CreatedBy: l.createdBy}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.User = user
	// Interleave empty-layer history entries: they must not shift the layer matching.
	var h []v1.History
	for _, e := range cf.History {
		h = append(h, v1.History{CreatedBy: "/bin/sh -c #(nop)  ENV X=1", EmptyLayer: true}, e)
	}
	cf.History = h
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validating test image: %v", err)
	}
	return img
}

func analyze(t testing.TB, img v1.Image) *Report {
	t.Helper()
	r, err := Analyze(img, Options{Name: "test"})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return r
}
