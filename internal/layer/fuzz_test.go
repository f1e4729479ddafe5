package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzSafe reports whether b is worth unpacking in a fuzz run: entries that
// declare big bodies (sparse files can claim terabytes in a few bytes) would
// only fill the disk.
func fuzzSafe(b []byte) bool {
	tr := tar.NewReader(bytes.NewReader(b))
	for i := 0; i < 1000; i++ {
		hdr, err := tr.Next()
		if err != nil {
			return true // Unpack sees the same error
		}
		if hdr.Size > 1<<20 {
			return false
		}
	}
	return false
}

// FuzzUnpack checks that no layer, however malformed, makes Unpack panic or
// touch anything outside its target directory.
func FuzzUnpack(f *testing.F) {
	requireRoot(f)
	seeds := [][]tent{
		{dir("a/"), reg("a/b", "hello"), symlink("a/l", "b"), hardlink("a/h", "a/b")},
		{reg(".wh.x", ""), dir("d/"), reg("d/.wh..wh..opq", ""), reg("d/.wh.y", "")},
		{symlink("ln", "/"), reg("ln/evil", "x"), symlink("up", "../../.."), reg("up/evil2", "x")},
		{symlink("ln", "../outside"), reg("ln/secret", "pwned"), hardlink("hl", "../outside/secret")},
		{symlink("f", "../outside/secret"), reg("f", "pwned"), dir("f/"), reg("f", "again")},
		{reg("../../../x", "x"), reg("/abs", "y"), reg(".wh..", ""), reg("a/.wh...", "")},
		{{name: "fifo", typ: tar.TypeFifo}, {name: "c", typ: tar.TypeChar}, {name: "b", typ: tar.TypeBlock}},
		{dir("a/"), dir("a/outside/"), symlink("a", ".."), dir("b/"), dir("b/c/"), symlink("b", "../outside")},
	}
	for _, s := range seeds {
		f.Add(buildTar(f, s...))
	}
	f.Add([]byte{})
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !fuzzSafe(b) {
			t.Skip("declares large bodies")
		}
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		must(t, os.Mkdir(outside, 0o755))
		must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
		outsideTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		must(t, os.Chtimes(outside, outsideTime, outsideTime))
		root := filepath.Join(base, "root")
		err := Unpack(bytes.NewReader(b), root)
		if err != nil && !strings.HasPrefix(err.Error(), "unpacking ") && !strings.HasPrefix(err.Error(), "reading layer tar") {
			t.Errorf("error does not name the entry or the tar: %v", err)
		}
		top, err := os.ReadDir(base)
		must(t, err)
		if len(top) != 2 {
			t.Fatalf("base holds %d entries, want outside and root", len(top))
		}
		ents, err := os.ReadDir(outside)
		must(t, err)
		if len(ents) != 1 || ents[0].Name() != "secret" {
			t.Fatalf("outside dir changed: %v", ents)
		}
		if st := statOf(t, filepath.Join(outside, "secret")); st.Nlink != 1 || st.Size != 6 || st.Mode&0o7777 != 0o600 || st.Uid != 0 {
			t.Fatalf("outside secret changed: %+v", st)
		}
		if isOpaque(outside) || isOpaque(base) {
			t.Fatal("a directory outside root was marked opaque")
		}
		if fi, err := os.Stat(outside); err != nil || !fi.ModTime().Equal(outsideTime) {
			t.Fatalf("outside dir's times changed: mtime %v", fi.ModTime())
		}
		if st := statOf(t, outside); st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Fatalf("outside dir: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
		}
		// Whatever was unpacked can be written back as a layer.
		if err == nil {
			// Except a directory that a tar made by naming it as a parent
			// (".wh.x/f"): a real file named .wh.* cannot go in a layer.
			if err := Write(io.Discard, root, WriteOptions{}); err != nil && !errors.Is(err, ErrReservedName) {
				t.Errorf("Write of unpacked tree: %v", err)
			}
		}
	})
}
