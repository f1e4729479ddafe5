package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenArchiveNotArchive: what is not a tar (compressed or not) is told
// apart before anything is extracted, so ADD copies it as a file.
func TestOpenArchiveNotArchive(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("plain text, gzipped\n"))
	zw.Close()
	for name, data := range map[string][]byte{
		"empty":       nil,
		"text":        []byte("just text\n"),
		"gzip-text":   gz.Bytes(),
		"short-block": bytes.Repeat([]byte{'a'}, 100),
	} {
		t.Run(name, func(t *testing.T) {
			a, err := OpenArchive(bytes.NewReader(data))
			if !errors.Is(err, ErrNotArchive) {
				if a != nil {
					a.Close()
				}
				t.Fatalf("err = %v, want ErrNotArchive", err)
			}
		})
	}
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func mergeInto(t testing.TB, data []byte, dir string, opts MergeOptions) error {
	t.Helper()
	a, err := OpenArchive(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("OpenArchive: %v", err)
	}
	defer a.Close()
	return a.Merge(dir, opts)
}

// TestMergeKeepsTree: ADD merges into what is there: files it does not name
// stay, directories stay (taking the entry's mode), files it names are
// replaced; the directory merged into keeps its own metadata even when the
// archive has a "./" entry.
func TestMergeKeepsTree(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	for _, compressed := range []bool{false, true} {
		root := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(root, "sub"), 0o700))
		must(t, os.WriteFile(filepath.Join(root, "sub", "old.txt"), []byte("old"), 0o644))
		must(t, os.WriteFile(filepath.Join(root, "replaced.txt"), []byte("before"), 0o644))
		must(t, os.Chmod(root, 0o711))
		data := buildTar(t, tent{name: "./", typ: tar.TypeDir, mode: 0o700}, dir("sub/"), reg("sub/new.txt", "new"), reg("replaced.txt", "after"))
		if compressed {
			data = gzipped(t, data)
		}
		must(t, mergeInto(t, data, root, MergeOptions{}))
		for p, want := range map[string]string{
			"sub/old.txt":  "file:old",
			"sub/new.txt":  "file:new",
			"replaced.txt": "file:after",
			"sub":          "dir",
		} {
			if got := kindOf(t, filepath.Join(root, p)); got != want {
				t.Errorf("compressed=%v: %s is %s, want %s", compressed, p, got, want)
			}
		}
		if fi, err := os.Stat(filepath.Join(root, "sub")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("sub: %v, mode %v, want the entry's 0755", err, fi.Mode().Perm())
		}
		if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o711 {
			t.Errorf("the directory merged into: %v, mode %v, want its own 0711 kept", err, fi.Mode().Perm())
		}
	}
}

// TestMergeNoWhiteouts: in an ADD, ".wh." names are ordinary files: nothing
// already there is hidden or removed, nothing is made opaque, no whiteout
// device is made.
func TestMergeNoWhiteouts(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "victim"), []byte("keep"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "d", "inner"), []byte("keep"), 0o644))
	data := buildTar(t, reg(".wh.victim", "x"), reg("d/.wh..wh..opq", ""), reg(".wh.gone", "y"))
	must(t, mergeInto(t, data, dir, MergeOptions{}))
	for p, want := range map[string]string{
		"victim":         "file:keep",
		"d/inner":        "file:keep",
		"d":              "dir",
		".wh.victim":     "file:x",
		"d/.wh..wh..opq": "file:",
		".wh.gone":       "file:y",
		"gone":           "missing",
	} {
		if got := kindOf(t, filepath.Join(dir, p)); got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
}

// TestMergeOwner: --chown's owner replaces the archive's on every entry;
// without it the archive's owners are kept.
func TestMergeOwner(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1234, Gid: 1234, ModTime: epoch}))
	must(t, tw.WriteHeader(&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 1234, Size: 1, ModTime: epoch}))
	tw.Write([]byte("f"))
	must(t, tw.WriteHeader(&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "f", Uid: 1234, Gid: 1234, ModTime: epoch}))
	must(t, tw.Close())
	for _, tc := range []struct {
		name     string
		owner    *Owner
		uid, gid uint32
	}{
		{name: "archive", uid: 1234, gid: 1234},
		{name: "chown", owner: &Owner{UID: 7, GID: 8}, uid: 7, gid: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, mergeInto(t, buf.Bytes(), dir, MergeOptions{Owner: tc.owner}))
			for _, p := range []string{"d", "d/f", "d/l"} {
				var st unix.Stat_t
				must(t, unix.Lstat(filepath.Join(dir, p), &st))
				if st.Uid != tc.uid || st.Gid != tc.gid {
					t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, tc.uid, tc.gid)
				}
			}
			if fi, err := os.Lstat(filepath.Join(dir, "d/f")); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("d/f: %v mode %v, want the archive's 0640", err, fi.Mode().Perm())
			}
		})
	}
}

// TestMergeEscapes: an archive ADDed into a directory cannot write, link or
// replace anything outside it, through "..", absolute names, symlinks it
// makes or symlinks already in the tree.
func TestMergeEscapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents []tent
	}{
		{"dotdot", []tent{reg("../outside/pwned", "x")}},
		{"absolute", []tent{reg("/outside/pwned", "x")}},
		{"own-symlink-parent", []tent{symlink("esc", "../outside"), reg("esc/pwned", "x")}},
		{"own-absolute-symlink", []tent{symlink("esc", "/outside"), reg("esc/pwned", "x")}},
		{"existing-symlink-parent", []tent{reg("pre/pwned", "x")}},
		{"replace-existing-symlink", []tent{reg("prefile", "x")}},
		{"hardlink-out", []tent{hardlink("hl", "../outside/secret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			must(t, os.Mkdir(outside, 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644))
			dir := filepath.Join(base, "dest")
			must(t, os.Mkdir(dir, 0o755))
			must(t, os.Symlink(outside, filepath.Join(dir, "pre")))
			must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "prefile")))
			_ = mergeInto(t, buildTar(t, tc.ents...), dir, MergeOptions{})
			entries, err := os.ReadDir(outside)
			must(t, err)
			if len(entries) != 1 || readFile(t, filepath.Join(outside, "secret")) != "secret" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("outside changed: %v, secret %q", names, readFile(t, filepath.Join(outside, "secret")))
			}
			var st unix.Stat_t
			must(t, unix.Stat(filepath.Join(outside, "secret"), &st))
			if st.Nlink != 1 {
				t.Errorf("the secret outside got a hard link (nlink %d)", st.Nlink)
			}
		})
	}
}

// TestMergeSkipsSpecial: ADD extracts files, directories and links; device
// nodes and fifos in an archive are skipped, as they always were.
func TestMergeSkipsSpecial(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}))
	must(t, tw.WriteHeader(&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644}))
	must(t, tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}))
	tw.Write([]byte("f"))
	must(t, tw.Close())
	dir := t.TempDir()
	must(t, mergeInto(t, buf.Bytes(), dir, MergeOptions{}))
	for p, want := range map[string]string{"null": "missing", "fifo": "missing", "f": "file:f"} {
		if got := kindOf(t, filepath.Join(dir, p)); got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
}
