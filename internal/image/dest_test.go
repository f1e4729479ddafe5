package image

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkDockerArchive fails unless data is a docker-archive naming want.
func checkDockerArchive(t *testing.T, data []byte, want string) {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatalf("not a docker-archive (%d bytes): %v", len(data), err)
	}
	if len(m) != 1 || strings.Join(m[0].RepoTags, ",") != want {
		t.Errorf("manifest.json = %+v, want RepoTags %s", m, want)
	}
}

// dirNames lists dir, failing the test on error.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// withStdout points "-" at a buffer for the test.
func withStdout(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	t.Cleanup(func() { stdout = old })
	return &buf
}

func TestSaveToStdout(t *testing.T) {
	buf := withStdout(t)
	img := ociRandom(t)
	if err := SaveFile("-", map[string]v1.Image{"app:1": img}); err != nil {
		t.Fatal(err)
	}
	checkDockerArchive(t, buf.Bytes(), "docker.io/library/app:1")
	if _, err := os.Lstat("-"); err == nil {
		t.Error(`a file named "-" was created`)
	}

	buf.Reset()
	if err := WriteOutput(img, "type=docker,dest=-", []string{"app:2"}); err != nil {
		t.Fatal(err)
	}
	checkDockerArchive(t, buf.Bytes(), "docker.io/library/app:2")
	if err := WriteOutput(img, "type=oci,dest=-", nil); err == nil {
		t.Error("an OCI layout directory was written to stdout")
	}
}

func TestSaveToFifo(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		data, err := os.ReadFile(fifo) // blocks until the writer opens it
		got <- result{data, err}
	}()
	if err := SaveFile(fifo, map[string]v1.Image{"app:1": ociRandom(t)}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		// The reader still waits on the fifo that is gone: do not wait for it.
		t.Fatalf("the fifo was replaced: %v %v", fi.Mode(), err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkDockerArchive(t, r.data, "docker.io/library/app:1")
	if n := dirNames(t, filepath.Dir(fifo)); len(n) != 1 {
		t.Errorf("directory holds %v, want only the fifo", n)
	}
}

// A device, and a symlink to one (as /dev/stdout is), are written in place:
// never replaced by a regular file.
func TestSaveToDevice(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "stdout")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	dests := []string{link}
	if os.Geteuid() == 0 {
		// A null device of our own, so a regression cannot clobber /dev/null.
		null := filepath.Join(dir, "null")
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		dests = append(dests, null)
	}
	img := ociRandom(t)
	for _, d := range dests {
		if err := SaveFile(d, map[string]v1.Image{"app:1": img}); err != nil {
			t.Errorf("SaveFile(%s): %v", d, err)
		}
		if err := WriteOutput(img, "type=tar,dest="+d, nil); err != nil {
			t.Errorf("WriteOutput(%s): %v", d, err)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink to /dev/null was replaced: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a character device: %v %v", fi.Mode(), err)
	}
	if len(dests) > 1 {
		if fi, err := os.Lstat(dests[1]); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("the null device was replaced: %v %v", fi.Mode(), err)
		}
	}
	if n := dirNames(t, dir); len(n) != len(dests) {
		t.Errorf("directory holds %v, want only %d destinations", n, len(dests))
	}
}

// A symlink to a regular file (a shell's > redirect behind /dev/stdout, or a
// link the user made) is written through and stays a link.
func TestSaveThroughSymlinkToFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.tar")
	if err := os.WriteFile(target, bytes.Repeat([]byte("old"), 100000), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.tar")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := SaveFile(link, map[string]v1.Image{"app:1": ociRandom(t)}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	checkDockerArchive(t, data, "docker.io/library/app:1")
}

func TestWriteDestFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	failing := func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 3<<20)) // past the buffer, so it reaches the file
		return boom
	}
	fresh := filepath.Join(dir, "fresh.tar")
	if err := writeDest(fresh, failing); !errors.Is(err, boom) {
		t.Fatalf("writeDest = %v, want boom", err)
	}
	existing := filepath.Join(dir, "existing.tar")
	if err := os.WriteFile(existing, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeDest(existing, failing); !errors.Is(err, boom) {
		t.Fatalf("writeDest = %v, want boom", err)
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "previous" {
		t.Errorf("the existing destination became %.20q (%v)", b, err)
	}
	layoutDir := filepath.Join(dir, "layout")
	if err := writeDirDest(layoutDir, func(string) bool { return true }, func(d string) error {
		if err := os.WriteFile(filepath.Join(d, "half"), []byte("x"), 0o644); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("writeDirDest = %v, want boom", err)
	}
	if n := dirNames(t, dir); strings.Join(n, ",") != "existing.tar" {
		t.Errorf("after failed writes the directory holds %v, want only existing.tar", n)
	}
}

// A new output file gets 0666 less the umask, as a shell redirect would; a
// replaced one keeps its mode.
func TestWriteDestModes(t *testing.T) {
	old := unix.Umask(0o027)
	defer unix.Umask(old)
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh")
	write := func(w io.Writer) error { _, err := w.Write([]byte("data")); return err }
	if err := writeDest(fresh, write); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new output: mode %v (%v), want 0640", fi.Mode(), err)
	}
	kept := filepath.Join(dir, "kept")
	if err := os.WriteFile(kept, nil, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kept, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := writeDest(kept, write); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(kept); err != nil || fi.Mode().Perm() != 0o604 {
		t.Errorf("replaced output: mode %v (%v), want 0604", fi.Mode(), err)
	}
}

func TestLayoutDirReplaced(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "layout")
	a, b := ociRandom(t), ociRandom(t)
	if err := WriteOutput(a, "type=oci,dest="+dest, []string{"app:1"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteOutput(b, "type=oci,dest="+dest, []string{"app:2"}); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != digestOf(t, b) {
		t.Errorf("layout index %+v, want only %s", im.Manifests, digestOf(t, b))
	}
	if n := dirNames(t, dir); strings.Join(n, ",") != "layout" {
		t.Errorf("directory holds %v, want only layout", n)
	}

	// A directory that is not a previous output is not replaced.
	mine := filepath.Join(dir, "mine")
	if err := os.MkdirAll(filepath.Join(mine, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteOutput(a, "type=oci,dest="+mine, nil); err == nil || !strings.Contains(err.Error(), mine) {
		t.Errorf("WriteOutput over a directory of the user's: %v, want an error naming it", err)
	}
	if _, err := os.Stat(filepath.Join(mine, "work")); err != nil {
		t.Errorf("the user's directory was touched: %v", err)
	}
}
