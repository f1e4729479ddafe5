package layer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlay at a new directory and returns it with an
// unmount function; the mount is also removed in t.Cleanup.
func mountOverlay(t *testing.T, opts string) (string, func()) {
	t.Helper()
	requireRoot(t)
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		if errors.Is(err, unix.ENODEV) {
			t.Skip("kernel lacks overlayfs")
		}
		t.Fatalf("mounting overlay %s: %v", opts, err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := unix.Unmount(merged, 0); err != nil {
				t.Errorf("unmounting %s: %v", merged, err)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	return merged, unmount
}

func mkdirs(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(body), 0o644))
	}
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestOverlayKernel checks both conversions against the kernel: whiteouts
// made by overlayfs become OCI whiteouts in Write, and a layer unpacked by
// Unpack hides lower files once mounted as a lowerdir.
func TestOverlayKernel(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	mkdirs(t, lower, map[string]string{
		"keep": "k", "gone": "g", "dir/x": "x", "dir/y": "y", "tree/sub/z": "z",
	})

	// 1. Changes made through an overlay leave whiteouts in upper.
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(work, 0o755))
	merged, unmount := mountOverlay(t, "lowerdir="+lower+",upperdir="+upper+",workdir="+work)
	must(t, os.Remove(filepath.Join(merged, "gone")))
	must(t, os.RemoveAll(filepath.Join(merged, "dir")))
	must(t, os.Mkdir(filepath.Join(merged, "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(merged, "dir/new"), []byte("n"), 0o644))
	must(t, os.Remove(filepath.Join(merged, "tree/sub/z")))
	unmount()

	var tarBuf bytes.Buffer
	must(t, Write(&tarBuf, upper, WriteOptions{}))
	var names []string
	for _, e := range listTar(t, bytes.NewReader(tarBuf.Bytes())) {
		names = append(names, e.Name)
	}
	want := []string{".wh.gone", "dir/", "dir/.wh..wh..opq", "dir/new", "tree/", "tree/sub/", "tree/sub/.wh.z"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("layer of overlay upper = %q, want %q", names, want)
	}

	// 2. The layer unpacked as a lowerdir hides what it deleted.
	layerDir := filepath.Join(base, "layer")
	must(t, Unpack(bytes.NewReader(tarBuf.Bytes()), layerDir))
	merged2, _ := mountOverlay(t, "lowerdir="+layerDir+":"+lower)
	for p, want := range map[string]bool{
		"keep": true, "gone": false, "dir/x": false, "dir/y": false, "dir/new": true,
		"tree/sub": true, "tree/sub/z": false,
	} {
		if got := exists(t, filepath.Join(merged2, p)); got != want {
			t.Errorf("merged %s exists = %v, want %v", p, got, want)
		}
	}
}

// TestOverlayHandmadeLayer mounts a layer unpacked from a hand-written OCI
// tar (not one produced by Write) over a lower dir.
func TestOverlayHandmadeLayer(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	mkdirs(t, lower, map[string]string{"etc/hidden": "h", "etc/kept": "k", "opq/old": "o"})
	layerDir := filepath.Join(base, "layer")
	must(t, Unpack(bytes.NewReader(buildTar(t,
		dir("etc/"), reg("etc/.wh.hidden", ""),
		reg("opq/.wh..wh..opq", ""), reg("opq/new", "n"),
	)), layerDir))
	merged, _ := mountOverlay(t, "lowerdir="+layerDir+":"+lower)
	for p, want := range map[string]bool{"etc/hidden": false, "etc/kept": true, "opq/old": false, "opq/new": true} {
		if got := exists(t, filepath.Join(merged, p)); got != want {
			t.Errorf("merged %s exists = %v, want %v", p, got, want)
		}
	}
}

// TestValidateLayer checks that Write's output makes a valid v1.Layer,
// uncompressed and gzip-compressed with Compress. (validate.Layer reads
// compressed blobs with gzip only, so zstd is covered by TestCompress.)
func TestValidateLayer(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	makeTree(t, src, richTree(t))
	raw := writeTar(t, src, WriteOptions{})
	for _, kind := range []string{None, Gzip} {
		t.Run(kind, func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := Compress(&buf, kind)
			must(t, err)
			_, err = zw.Write(raw)
			must(t, err)
			must(t, zw.Close())
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
			})
			must(t, err)
			if err := validate.Layer(l); err != nil {
				t.Fatalf("validate.Layer: %v", err)
			}
		})
	}
}
