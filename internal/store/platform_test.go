package store

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// platformImage stores a random image whose config is for os/arch.
func platformImage(t *testing.T, s *Store, arch string) v1.Hash {
	t.Helper()
	img := randomImage(t, true)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	h, err := s.WriteImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var other = map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]

func TestIndexPlatforms(t *testing.T) {
	if other == "" {
		t.Skip("test written for amd64 and arm64 hosts")
	}
	s := openStore(t)
	host := platformImage(t, s, runtime.GOARCH)
	foreign := platformImage(t, s, other)
	p := func(arch string) v1.Platform { return v1.Platform{OS: "linux", Architecture: arch} }

	// A plain image is for its config's platform only.
	if err := s.Tag("x", host); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageFor("x", p(other)); !errors.Is(err, ErrNoPlatform) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "linux/"+other) {
		t.Errorf("ImageFor(image for the host, %s): %v, want ErrNoPlatform naming it", other, err)
	}
	// AddPlatform turns the name into an index of both, the first one kept.
	ih, err := s.AddPlatform("x", foreign)
	if err != nil {
		t.Fatal(err)
	}
	for arch, want := range map[string]v1.Hash{runtime.GOARCH: host, other: foreign} {
		img, err := s.ImageFor("x", p(arch))
		if err != nil {
			t.Fatalf("ImageFor(x, %s): %v", arch, err)
		}
		if d, _ := img.Digest(); d != want {
			t.Errorf("ImageFor(x, %s) = %s, want %s", arch, d, want)
		}
	}
	if img, err := s.Image("x"); err != nil {
		t.Errorf("Image of an index name: %v", err)
	} else if d, _ := img.Digest(); d != host {
		t.Errorf("Image of an index name gave %s, want the host's %s", d, host)
	}
	if ok, err := s.IsIndex("x"); !ok || err != nil {
		t.Errorf("IsIndex(x) = %v, %v", ok, err)
	}
	// Adding the same platform again replaces its image and keeps the other.
	foreign2 := platformImage(t, s, other)
	if _, err := s.AddPlatform("x", foreign2); err != nil {
		t.Fatal(err)
	}
	// Two images for one platform make no index.
	if _, err := s.WriteIndex([]v1.Hash{foreign, foreign2}, nil); err == nil || !strings.Contains(err.Error(), "two images") {
		t.Errorf("WriteIndex of two %s images: %v", other, err)
	}
	idx, err := s.Index("x")
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != host || im.Manifests[1].Digest != foreign2 {
		t.Errorf("after replacing %s: index %+v", other, im.Manifests)
	}
	// GC keeps every image of a named index.
	if _, err := s.GC(GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []v1.Hash{host, foreign2} {
		img, err := s.Image(h.String())
		if err != nil {
			t.Fatalf("after GC: %v", err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			d, _ := l.Digest()
			if !s.HasBlob(d) {
				t.Errorf("after GC: layer %s of %s is gone", d, h)
			}
		}
	}
	_ = ih
}

// TestIndexReadBounded: an index blob over MaxManifestSize is refused, never
// read whole.
func TestIndexReadBounded(t *testing.T) {
	s := openStore(t)
	big := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"x":"` +
		strings.Repeat("a", MaxManifestSize) + `"}}`
	h, _, err := s.WriteBlob([]byte(big))
	if err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func(string) error{
		"Index":    func(r string) error { _, err := s.Index(r); return err },
		"Image":    func(r string) error { _, err := s.Image(r); return err },
		"ImageFor": func(r string) error { _, err := s.ImageFor(r, HostPlatform()); return err },
	} {
		if err := get(h.String()); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s of an index over the limit: %v, want ErrTooLarge", name, err)
		}
	}
	// Any blob named as a manifest (a layer's digest on the command line) is
	// read only up to the limit.
	h2, _, err := s.WriteBlob([]byte(strings.Repeat("x", MaxManifestSize+1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(h2.String()); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Image of a blob over the manifest limit: %v, want ErrTooLarge", err)
	}
	os.Remove(s.BlobPath(h))
	os.Remove(s.BlobPath(h2))
}
