package cli

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/slimbuild/slimbuild/internal/store"
)

// TestBuildPlatforms: build --platform with two platforms prints, names and
// writes (--output type=oci, --iidfile) one index whose images are each for
// their platform, with the TARGET* args of it; save --platform writes one of
// them as a docker-archive; tag names the whole index.
func TestBuildPlatforms(t *testing.T) {
	ctxDir := t.TempDir()
	df := "FROM scratch\nARG TARGETPLATFORM TARGETARCH BUILDPLATFORM\nLABEL target=$TARGETPLATFORM arch=$TARGETARCH build=$BUILDPLATFORM\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	root, out := t.TempDir(), t.TempDir()
	iid, oci := filepath.Join(out, "iid"), filepath.Join(out, "oci")
	stdout, stderr, err := slimbuild(t, root, "build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "m:1",
		"--iidfile", iid, "--output", "type=oci,dest="+oci, ctxDir)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stderr)
	}
	digest := strings.TrimSpace(stdout)
	if data, err := os.ReadFile(iid); err != nil || string(data) != digest {
		t.Errorf("--iidfile holds %q (%v), want %q", data, err, digest)
	}
	lp, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Digest.String() != digest || !top.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("--output type=oci holds %+v, want the index %s", top.Manifests, digest)
	}
	idx, err := lp.ImageIndex(top.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"amd64", "arm64"}
	if len(im.Manifests) != len(want) {
		t.Fatalf("index holds %d manifests, want %d", len(im.Manifests), len(want))
	}
	for i, arch := range want {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			t.Errorf("manifest %d: platform %v, want linux/%s", i, d.Platform, arch)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		l := cf.Config.Labels
		if cf.Architecture != arch || l["arch"] != arch || l["target"] != "linux/"+arch || l["build"] != "linux/"+runtime.GOARCH {
			t.Errorf("linux/%s image: architecture %s, labels %v", arch, cf.Architecture, l)
		}
	}

	// save --platform: one platform as a docker-archive.
	for _, arch := range append(want, "") {
		tarPath := filepath.Join(out, "save-"+arch+".tar")
		args := []string{"save", "-o", tarPath, "m:1"}
		wantArch := arch
		if arch != "" {
			args = append(args, "--platform", "linux/"+arch)
		} else {
			wantArch = runtime.GOARCH // the host's
		}
		if _, stderr, err := slimbuild(t, root, args...); err != nil {
			t.Fatalf("save %v: %v\n%s", args, err, stderr)
		}
		img, err := tarball.ImageFromPath(tarPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != wantArch || cf.Config.Labels["arch"] != wantArch {
			t.Errorf("save --platform %q: architecture %s, labels %v", arch, cf.Architecture, cf.Config.Labels)
		}
	}
	if _, _, err := slimbuild(t, root, "save", "--platform", "linux/s390x", "-o", filepath.Join(out, "x.tar"), "m:1"); err == nil ||
		!strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("save --platform linux/s390x of an amd64+arm64 index: error %v, want one naming the platform", err)
	}

	// tag names the index, not the host's image.
	if _, stderr, err := slimbuild(t, root, "tag", "m:1", "m:2"); err != nil {
		t.Fatalf("tag: %v\n%s", err, stderr)
	}
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range []string{"docker.io/library/m:1", "docker.io/library/m:2"} {
		x, err := st.Index(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if d, _ := x.Digest(); d.String() != digest {
			t.Errorf("%s is %s, want the index %s", n, d, digest)
		}
	}

}
