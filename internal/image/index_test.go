package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slimbuild/slimbuild/internal/store"
)

// storedIndexOf stores random images for amd64 and arm64 under one name.
func storedIndexOf(t *testing.T, st *store.Store, n string) v1.Hash {
	t.Helper()
	var ih v1.Hash
	for _, arch := range []string{"amd64", "arm64"} {
		img := ociRandom(t)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		h, err := st.WriteImage(img)
		if err != nil {
			t.Fatal(err)
		}
		if ih, err = st.AddPlatform(n, h); err != nil {
			t.Fatal(err)
		}
	}
	return ih
}

// TestPushIndex: push of a multi-platform name sends the whole index (not the
// host's image alone), and ResolveFor picks each platform from the store.
func TestPushIndex(t *testing.T) {
	host := startRegistry(t)
	ctx := context.Background()
	st := openStore(t)
	n := "docker.io/library/multi:1"
	ih := storedIndexOf(t, st, n)
	d, err := (&Registry{}).PushStored(ctx, st, n, host+"/m/multi:1", store.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if d != ih {
		t.Errorf("PushStored returned %s, want the index %s", d, ih)
	}
	ref, _ := name.ParseReference(host + "/m/multi:1")
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("the registry holds no index: %v", err)
	}
	if err := validate.Index(idx); err != nil {
		t.Error(err)
	}
	if got, _ := idx.Digest(); got != ih {
		t.Errorf("registry's index %s, want %s", got, ih)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := ResolveFor(ctx, st, "multi:1", false, v1.Platform{OS: "linux", Architecture: arch})
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != arch {
			t.Errorf("ResolveFor %s gave a %s image", arch, cf.Architecture)
		}
	}
	_, err = ResolveFor(ctx, st, "multi:1", false, v1.Platform{OS: "linux", Architecture: "s390x"})
	if err == nil || !strings.Contains(err.Error(), "import --platform linux/s390x") {
		t.Errorf("ResolveFor s390x: %v, want the import --platform advice", err)
	}
}

// TestWriteIndexOutput: type=oci writes the index (directory and archive);
// single-platform types are refused.
func TestWriteIndexOutput(t *testing.T) {
	st := openStore(t)
	ih := storedIndexOf(t, st, "docker.io/library/multi:1")
	idx, err := st.Index(ih.String())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, dest := range []string{filepath.Join(dir, "layout"), filepath.Join(dir, "a.tar")} {
		if err := WriteIndexOutput(idx, "type=oci,dest="+dest, []string{"multi:1"}); err != nil {
			t.Fatal(err)
		}
		ldir := dest
		if strings.HasSuffix(dest, ".tar") {
			ldir = filepath.Join(dir, "unpacked")
			if err := extractTar(dest, ldir); err != nil {
				t.Fatal(err)
			}
		}
		lp, err := layout.ImageIndexFromPath(ldir)
		if err != nil {
			t.Fatal(err)
		}
		top, _ := lp.IndexManifest()
		if len(top.Manifests) != 1 || top.Manifests[0].Digest != ih || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1" {
			t.Fatalf("%s: index.json %+v", dest, top.Manifests)
		}
		child, err := lp.ImageIndex(ih)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(child); err != nil {
			t.Errorf("%s: %v", dest, err)
		}
	}
	for _, typ := range []string{"docker", "tar"} {
		dest := filepath.Join(dir, typ+".out")
		err := WriteIndexOutput(idx, "type="+typ+",dest="+dest, nil)
		if err == nil || !strings.Contains(err.Error(), "one platform") {
			t.Errorf("type=%s: %v, want a refusal", typ, err)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("type=%s left %s", typ, dest)
		}
	}
}
