package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

const outputDockerfile = `FROM busybox
RUN echo payload > /payload
CMD ["sh", "-c", "echo hello-from-run; echo to-stderr >&2; exit 3"]
`

func TestOutputs(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{"Dockerfile": outputDockerfile}, engine.Options{Tags: []string{"out:1", "example.com/team/out:v2"}})
	tags := []string{"out:1", "example.com/team/out:v2"}
	out := t.TempDir()

	t.Run("oci directory", func(t *testing.T) {
		dest := filepath.Join(out, "layout")
		if err := image.WriteOutput(res.Image, "type=oci,dest="+dest, tags); err != nil {
			t.Fatal(err)
		}
		checkLayoutImage(t, dest, res.Digest)
	})
	t.Run("oci archive", func(t *testing.T) {
		dest := filepath.Join(out, "image.tar")
		if err := image.WriteOutput(res.Image, "type=oci,dest="+dest, tags); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(out, "unpacked-oci")
		untar(t, dest, dir)
		checkLayoutImage(t, dir, res.Digest)
	})
	t.Run("docker archive", func(t *testing.T) {
		dest := filepath.Join(out, "docker.tar")
		if err := image.WriteOutput(res.Image, "type=docker,dest="+dest, tags); err != nil {
			t.Fatal(err)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(dest) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 {
			t.Fatalf("docker archive manifest has %d entries, want 1", len(m))
		}
		want := []string{"docker.io/library/out:1", "example.com/team/out:v2"}
		got := m[0].RepoTags
		// docker writes docker.io names short; accept either spelling.
		for i := range got {
			if ref, err := name.ParseReference(got[i]); err == nil {
				got[i] = ref.Name()
			}
		}
		for i := range want {
			ref, _ := name.ParseReference(want[i])
			want[i] = ref.Name()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RepoTags (-want +got):\n%s", diff)
		}
		// Layers as stored: the imported base plain, the built ones gzip, which
		// docker load takes and go-containerregistry's tarball reader does not.
		img, err := image.Open(context.Background(), st, dest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateImage(img); err != nil {
			t.Errorf("validate.Image(docker archive): %v", err)
		}
		if got := fileData(t, fsOf(t, img), "payload"); got != "payload\n" {
			t.Errorf("/payload = %q", got)
		}
		sameConfig(t, res.Image, img)
	})
	t.Run("rootfs tar", func(t *testing.T) {
		dest := filepath.Join(out, "rootfs.tar")
		if err := image.WriteOutput(res.Image, "type=tar,dest="+dest, nil); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fsys, err := readTar(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := fileData(t, fsys, "payload"); got != "payload\n" {
			t.Errorf("/payload = %q", got)
		}
		if e := fsys["bin/sh"]; e.Type != tar.TypeSymlink {
			t.Errorf("/bin/sh is not a symlink in the rootfs tar: %+v", e)
		}
	})
	if _, err := os.Stat(filepath.Join(out, "docker.tar.tmp")); err == nil {
		t.Errorf("a .tmp file was left next to an output")
	}
}

func checkLayoutImage(t *testing.T, dir string, want v1.Hash) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range im.Manifests {
		if d.Digest != want {
			continue
		}
		found = true
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateImage(img); err != nil {
			t.Errorf("validate.Image(layout): %v", err)
		}
		if got := fileData(t, fsOf(t, img), "payload"); got != "payload\n" {
			t.Errorf("/payload = %q", got)
		}
		if d.Annotations["org.opencontainers.image.ref.name"] == "" && d.Annotations["io.containerd.image.name"] == "" {
			t.Errorf("layout descriptor has no name annotation: %v", d.Annotations)
		}
	}
	if !found {
		t.Errorf("layout index does not hold the built image %s: %+v", want, im.Manifests)
	}
}

func sameConfig(t *testing.T, a, b v1.Image) {
	t.Helper()
	ca, err := a.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if ca != cb {
		t.Errorf("config digest %s, want the built image's %s", cb, ca)
	}
}

func untar(t *testing.T, src, dir string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(cleanName(h.Name)))
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRunImage(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{"Dockerfile": outputDockerfile}, engine.Options{})
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "image CMD", wantCode: 3, wantStdout: "hello-from-run\n", wantStderr: "to-stderr\n"},
		{name: "args replace CMD", args: []string{"cat", "/payload"}, wantCode: 0, wantStdout: "payload\n"},
		{name: "runs as the image user", args: []string{"sh", "-c", "id -u; exit 0"}, wantStdout: "0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, err := image.Run(ctx, st, res.Image, runtime.ImageRun{Args: tc.args, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr.String())
			}
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.wantStdout)
			}
			if tc.wantStderr != "" && stderr.String() != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
			assertClean(t, st)
		})
	}
}
