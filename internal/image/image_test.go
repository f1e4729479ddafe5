package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/store"
)

func TestNormalizeName(t *testing.T) {
	const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1", "docker.io/library/busybox:1"},
		{"docker.io/library/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"},
		{"user/app", "docker.io/user/app:latest"},
		{"localhost:5000/x", "localhost:5000/x:latest"},
		{"ghcr.io/a/b/c:v2", "ghcr.io/a/b/c:v2"},
		{"busybox@" + dig, "docker.io/library/busybox@" + dig},
		{"busybox:1@" + dig, "docker.io/library/busybox:1@" + dig},
		{"localhost:5000/x@" + dig, "localhost:5000/x@" + dig},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeName(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "UPPER/case", "a b", "x@sha256:nothex"} {
		_, err := NormalizeName(bad)
		if err == nil {
			t.Errorf("NormalizeName(%q) succeeded", bad)
		} else if bad != "" && !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name the input %q", err, bad)
		}
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startRegistry runs an in-process registry and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func ociRandom(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPullPush(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	host := startRegistry(t)
	ctx := context.Background()
	src := ociRandom(t)
	ref, err := name.ParseReference(host + "/test/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, src, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}

	st := openStore(t)
	var logs []string
	img, err := Pull(ctx, st, host+"/test/img:v1", func(f string, a ...any) { logs = append(logs, f) })
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Error(err)
	}
	if got, want := digestOf(t, img), digestOf(t, src); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	if len(logs) == 0 {
		t.Error("Pull reported no progress")
	}
	l, _ := st.List()
	if len(l) != 1 || l[0].Name != host+"/test/img:v1" {
		t.Errorf("store names after pull: %v", l)
	}

	// Resolve finds it in the store without the registry.
	if _, err := Resolve(ctx, st, host+"/test/img:v1", false); err != nil {
		t.Errorf("Resolve of stored image: %v", err)
	}

	d, err := (&Registry{}).PushStored(ctx, st, host+"/test/img:v1", host+"/other/copy:v2", store.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if d != digestOf(t, src) {
		t.Errorf("PushStored returned %s, want %s", d, digestOf(t, src))
	}
	pref, _ := name.ParseReference(host + "/other/copy:v2")
	pushed, err := remote.Image(pref)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digestOf(t, pushed), digestOf(t, src); got != want {
		t.Errorf("pushed digest %s, want %s", got, want)
	}
}

func TestPullMultiPlatform(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	host := startRegistry(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	mine, theirs := ociRandom(t), ociRandom(t)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	ref, _ := name.ParseReference(host + "/multi:latest")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	img, err := Pull(context.Background(), openStore(t), host+"/multi", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digestOf(t, img), digestOf(t, mine); got != want {
		t.Errorf("pulled %s, want the %s image %s", got, runtime.GOARCH, want)
	}
}

func TestResolveMissing(t *testing.T) {
	host := startRegistry(t)
	st := openStore(t)
	for _, pull := range []bool{true, false} {
		_, err := Resolve(context.Background(), st, host+"/nope", pull)
		if err == nil {
			t.Fatalf("Resolve(pull=%v) of a missing image succeeded", pull)
		}
		for _, want := range []string{host + "/nope:latest", "slimbuild import ROOTFS"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Resolve(pull=%v) error %q lacks %q", pull, err, want)
			}
		}
	}
}

// rootfsTar builds a small root filesystem tar.
func rootfsTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir})
	body := []byte("#!/bin/sh\necho hi\n")
	tw.WriteHeader(&tar.Header{Name: "bin/hello", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressWith(t *testing.T, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	if kind == "gzip" {
		w = gzip.NewWriter(&buf)
	} else {
		var err error
		if w, err = layer.Compress(&buf, kind); err != nil {
			t.Fatal(err)
		}
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileNames lists the regular files of the flattened image.
func fileNames(t *testing.T, img v1.Image) []string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			out = append(out, strings.TrimPrefix(h.Name, "./"))
		}
	}
}

func TestImport(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	src := ociRandom(t)
	rootfs := rootfsTar(t)
	for _, tc := range []struct {
		name       string
		make       func(t *testing.T, dir string) string
		rootfs     bool // a one-layer image holding bin/hello
		keepDigest bool // the source image's digest survives
	}{
		{"rootfs dir", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "rootfs")
			os.MkdirAll(filepath.Join(d, "bin"), 0o755)
			writeFile(t, filepath.Join(d, "bin", "hello"), []byte("#!/bin/sh\necho hi\n"))
			return d
		}, true, false},
		{"rootfs tar", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar"), rootfs)
		}, true, false},
		{"rootfs tar.gz", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar.gz"), compressWith(t, "gzip", rootfs))
		}, true, false},
		{"rootfs tar.zst", func(t *testing.T, dir string) string {
			return writeFile(t, filepath.Join(dir, "rootfs.tar.zst"), compressWith(t, "zstd", rootfs))
		}, true, false},
		{"docker-archive", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "docker.tar")
			tag, _ := name.NewTag("example.com/src:1")
			if err := tarball.WriteToFile(p, tag, src); err != nil {
				t.Fatal(err)
			}
			return p
		}, false, false},
		{"oci layout", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "layout")
			lp, err := layout.Write(p, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := lp.AppendImage(src); err != nil {
				t.Fatal(err)
			}
			return p
		}, false, true},
		{"oci archive", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "oci.tar")
			if err := WriteOutput(src, "type=oci,dest="+p, []string{"src:1"}); err != nil {
				t.Fatal(err)
			}
			return p
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			source := tc.make(t, t.TempDir())
			h, err := Import(context.Background(), st, source, "imported:v1")
			if err != nil {
				t.Fatal(err)
			}
			img, err := st.Image("docker.io/library/imported:v1")
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOf(t, img); d != h {
				t.Errorf("tagged %s, Import returned %s", d, h)
			}
			// validate.Image reads layers as gzip: check the image as it is pushed.
			if pushed, err := Compressed(context.Background(), st, img, store.Gzip); err != nil {
				t.Error(err)
			} else if err := validate.Image(pushed); err != nil {
				t.Error(err)
			}
			if tc.keepDigest && h != digestOf(t, src) {
				t.Errorf("digest %s, want the source's %s", h, digestOf(t, src))
			}
			if !tc.rootfs {
				// The config's bytes are kept: its digest is the image ID docker's tools show.
				got, err1 := img.ConfigName()
				want, err2 := src.ConfigName()
				if err1 != nil || err2 != nil || got != want {
					t.Errorf("config %s (%v), want the source's %s (%v)", got, err1, want, err2)
				}
			}
			if tc.rootfs {
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || len(cf.RootFS.DiffIDs) != 1 || len(cf.Config.Env) != 0 || cf.Created.IsZero() {
					t.Errorf("config = %+v", cf)
				}
				if got := fileNames(t, img); len(got) != 1 || got[0] != "bin/hello" {
					t.Errorf("files = %v, want [bin/hello]", got)
				}
			} else {
				want := fileNames(t, src)
				if got := fileNames(t, img); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("files = %v, want %v", got, want)
				}
			}
			if n, _ := os.ReadDir(filepath.Join(st.Root(), "tmp")); len(n) != 0 {
				t.Errorf("import left %d temporaries", len(n))
			}
		})
	}
}

func TestImportRejects(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	for _, tc := range []struct{ name, source string }{
		{"missing", filepath.Join(dir, "nope")},
		{"not a tar", writeFile(t, filepath.Join(dir, "junk"), bytes.Repeat([]byte("junk"), 300))},
	} {
		if _, err := Import(context.Background(), st, tc.source, "x"); err == nil || !strings.Contains(err.Error(), tc.source) {
			t.Errorf("%s: Import error %v should name %q", tc.name, err, tc.source)
		}
	}
}

func TestWriteOutput(t *testing.T) {
	st := openStore(t)
	h, err := st.WriteImage(ociRandom(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Image(h.String())
	if err != nil {
		t.Fatal(err)
	}
	tags := []string{"app:1", "registry.example.com/team/app:2"}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		typ   string
		file  string
		tags  []string
		check func(t *testing.T, dest string)
	}{
		{"docker", "docker", "img.tar", tags, func(t *testing.T, dest string) {
			m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(dest) })
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || strings.Join(m[0].RepoTags, ",") != "docker.io/library/app:1,registry.example.com/team/app:2" {
				t.Errorf("manifest.json = %+v", m)
			}
			tag, _ := name.NewTag("docker.io/library/app:1")
			got, err := tarball.ImageFromPath(dest, &tag)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil {
				t.Error(err)
			}
		}},
		{"docker untagged", "docker", "untagged.tar", nil, func(t *testing.T, dest string) {
			m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(dest) })
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || len(m[0].RepoTags) != 0 {
				t.Errorf("manifest.json = %+v", m)
			}
			got, err := tarball.ImageFromPath(dest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil {
				t.Error(err)
			}
		}},
		{"oci dir", "oci", "layout", tags, func(t *testing.T, dest string) {
			idx, err := layout.ImageIndexFromPath(dest)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			if len(im.Manifests) != 2 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1" ||
				im.Manifests[1].Annotations["io.containerd.image.name"] != "registry.example.com/team/app:2" {
				t.Errorf("index = %+v", im.Manifests)
			}
			got, err := idx.Image(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(got); err != nil {
				t.Error(err)
			}
		}},
		{"oci archive", "oci", "oci.tar", tags, func(t *testing.T, dest string) {
			st2 := openStore(t)
			got, err := Open(ctx, st2, dest)
			if err != nil {
				t.Fatal(err)
			}
			if digestOf(t, got) != h {
				t.Errorf("archive image %s, want %s", digestOf(t, got), h)
			}
			if err := validate.Image(got); err != nil {
				t.Error(err)
			}
		}},
		{"rootfs tar", "tar", "fs.tar", nil, func(t *testing.T, dest string) {
			f, err := os.Open(dest)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tr := tar.NewReader(f)
			var got []string
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, strings.TrimPrefix(hdr.Name, "./"))
			}
			if want := fileNames(t, img); len(got) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("tar entries %v, want %v", got, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), tc.file)
			if err := WriteOutput(img, "type="+tc.typ+",dest="+dest, tc.tags); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dest + ".tmp"); err == nil {
				t.Error("temporary output left behind")
			}
			tc.check(t, dest)
		})
	}
}

func TestWriteOutputBadSpec(t *testing.T) {
	img := ociRandom(t)
	for _, spec := range []string{"", "type=zip,dest=x", "type=oci", "dest=x", "type=oci,dest=x,compression=zstd", "type"} {
		err := WriteOutput(img, spec, nil)
		if err == nil {
			t.Errorf("WriteOutput(%q) succeeded", spec)
		} else if !strings.Contains(err.Error(), spec) {
			t.Errorf("error %q does not name the spec %q", err, spec)
		}
	}
}

func TestSaveAndOpen(t *testing.T) {
	a, b := ociRandom(t), ociRandom(t)
	p := filepath.Join(t.TempDir(), "save.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(f, map[string]v1.Image{"a": a, "b:2": b}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for n, want := range map[string]v1.Image{"docker.io/library/a:latest": a, "docker.io/library/b:2": b} {
		tag, _ := name.NewTag(n)
		got, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(got); err != nil {
			t.Error(err)
		}
		wl, _ := want.Layers()
		gl, _ := got.Layers()
		for i := range wl {
			wd, _ := wl[i].DiffID()
			gd, _ := gl[i].DiffID()
			if wd != gd {
				t.Errorf("%s layer %d: diffID %s, want %s", n, i, gd, wd)
			}
		}
	}
}

// TestSkopeoReads checks that another OCI tool reads the outputs and the store.
func TestSkopeoReads(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed")
	}
	st := openStore(t)
	src := ociRandom(t)
	h, err := st.WriteImage(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tag("docker.io/library/app:1", h); err != nil {
		t.Fatal(err)
	}
	img, _ := st.Image(h.String())
	dir := t.TempDir()
	for _, spec := range []string{"type=docker,dest=" + dir + "/d.tar", "type=oci,dest=" + dir + "/o.tar", "type=oci,dest=" + dir + "/o"} {
		if err := WriteOutput(img, spec, []string{"app:1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{
		"docker-archive:" + dir + "/d.tar",
		"oci-archive:" + dir + "/o.tar",
		"oci:" + dir + "/o",
		"oci:" + st.Root() + ":docker.io/library/app:1",
	} {
		out, err := exec.Command(skopeo, "inspect", "--raw", ref).CombinedOutput()
		if err != nil {
			t.Errorf("skopeo inspect %s: %v\n%s", ref, err, out)
			continue
		}
		if !strings.Contains(string(out), `"layers"`) {
			t.Errorf("skopeo inspect %s: no manifest: %s", ref, out)
		}
	}
}
