package layer

// Reproducible layers: none of these tests need root.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var sourceDateEpoch = time.Unix(1_700_000_000, 0).UTC()

// plainNode is a path of a tree that a non-root user can make.
type plainNode struct {
	path, kind, body string // kind: dir, file, symlink, hardlink (body: target)
	mtime            time.Time
}

// makePlainTree creates nodes under root in the order given, then sets their
// mtimes deepest first so that directory times stick.
func makePlainTree(t testing.TB, root string, nodes []plainNode) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		switch n.kind {
		case "dir":
			must(t, os.Mkdir(p, 0o755))
		case "file":
			must(t, os.WriteFile(p, []byte(n.body), 0o644))
		case "symlink":
			must(t, os.Symlink(n.body, p))
		case "hardlink":
			must(t, os.Link(filepath.Join(root, n.body), p))
		default:
			t.Fatalf("bad node kind %q", n.kind)
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i].kind == "hardlink" {
			continue
		}
		p := filepath.Join(root, nodes[i].path)
		// atime in the future: it must never reach the tar.
		ts := []unix.Timespec{timespec(time.Now().Add(48 * time.Hour)), timespec(nodes[i].mtime)}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// tarHeaders reads every header of a tar, failing the test on a bad tar.
func tarHeaders(t testing.TB, data []byte) map[string]*tar.Header {
	t.Helper()
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		must(t, err)
		hdrs[hdr.Name] = hdr
	}
}

// TestWriteSourceDateEpoch checks the clamp: times after the epoch become the
// epoch, earlier ones stay, and no other time or host name is written.
func TestWriteSourceDateEpoch(t *testing.T) {
	before := sourceDateEpoch.Add(-1000 * time.Hour)
	after := time.Now().Add(time.Hour) // in the future, so surely after the epoch
	root := t.TempDir()
	makePlainTree(t, root, []plainNode{
		{path: "new", kind: "dir", mtime: after},
		{path: "new/file", kind: "file", body: "new", mtime: after.Add(1500 * time.Millisecond)},
		{path: "new/link", kind: "symlink", body: "file", mtime: after},
		{path: "new/hard", kind: "hardlink", body: "new/file"},
		{path: "old", kind: "dir", mtime: before},
		{path: "old/file", kind: "file", body: "old", mtime: before.Add(300 * time.Millisecond)},
		{path: "exact", kind: "file", body: "exact", mtime: sourceDateEpoch.Add(999 * time.Millisecond)},
	})

	var buf bytes.Buffer
	must(t, Write(&buf, root, WriteOptions{SourceDateEpoch: &sourceDateEpoch}))
	want := map[string]time.Time{
		"new/": sourceDateEpoch, "new/file": sourceDateEpoch, "new/hard": sourceDateEpoch, "new/link": sourceDateEpoch,
		"old/": before, "old/file": before, "exact": sourceDateEpoch,
	}
	hdrs := tarHeaders(t, buf.Bytes())
	if len(hdrs) != len(want) {
		t.Errorf("tar has %d entries, want %d", len(hdrs), len(want))
	}
	for name, mtime := range want {
		hdr, ok := hdrs[name]
		if !ok {
			t.Errorf("%s: missing from the tar", name)
			continue
		}
		if !hdr.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", name, hdr.ModTime.UTC(), mtime)
		}
		if !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: atime %v, ctime %v written, want neither", name, hdr.AccessTime, hdr.ChangeTime)
		}
		if hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner names %q:%q written, want none", name, hdr.Uname, hdr.Gname)
		}
		for k := range hdr.PAXRecords {
			if k == "atime" || k == "ctime" || k == "mtime" || k == "uname" || k == "gname" {
				t.Errorf("%s: PAX record %q written", name, k)
			}
		}
	}
	for _, rec := range []string{"atime=", "ctime=", "mtime="} {
		if bytes.Contains(buf.Bytes(), []byte(rec)) {
			t.Errorf("the tar holds a PAX %s record", rec)
		}
	}

	// Without the epoch, nothing is clamped (so the test above can fail).
	buf.Reset()
	must(t, Write(&buf, root, WriteOptions{}))
	if got := tarHeaders(t, buf.Bytes())["new/file"].ModTime; !got.Equal(after.Add(1500 * time.Millisecond).Truncate(time.Second)) {
		t.Errorf("without an epoch new/file has mtime %v, want its own %v", got, after)
	}
}

// TestWriterSourceDateEpoch covers the entries a COPY writes through Writer:
// parent directories from Mkdir, and AddOptions.ModTime.
func TestWriterSourceDateEpoch(t *testing.T) {
	src := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(src, []byte("x"), 0o644))
	later := sourceDateEpoch.Add(time.Hour)
	earlier := sourceDateEpoch.Add(-time.Hour)

	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.SetSourceDateEpoch(sourceDateEpoch.Add(400 * time.Millisecond)) // truncated to the second
	must(t, w.Mkdir("late", 0o755, Owner{}, later))
	must(t, w.Mkdir("early", 0o755, Owner{}, earlier))
	must(t, w.Add(src, "late/f", AddOptions{ModTime: &later}))
	must(t, w.Add(src, "early/f", AddOptions{ModTime: &earlier}))
	must(t, w.Add(src, "now", AddOptions{}))
	must(t, w.Close())

	hdrs := tarHeaders(t, buf.Bytes())
	for name, want := range map[string]time.Time{
		"late/": sourceDateEpoch, "late/f": sourceDateEpoch, "now": sourceDateEpoch,
		"early/": earlier, "early/f": earlier,
	} {
		if hdr := hdrs[name]; hdr == nil || !hdr.ModTime.Equal(want) {
			t.Errorf("%s: header %+v, want mtime %v", name, hdr, want)
		}
	}
}

// TestWriteReproducible writes two copies of one tree, at different paths,
// made in different orders at different times after the epoch: with the epoch
// the tars are byte for byte equal, without it they differ.
func TestWriteReproducible(t *testing.T) {
	tree := func(base time.Time, reverse bool) []plainNode {
		nodes := []plainNode{
			{path: "b", kind: "dir"},
			{path: "b/z", kind: "file", body: "z"},
			{path: "b/a", kind: "file", body: "a"},
			{path: "b/m", kind: "hardlink", body: "b/a"},
			{path: "a", kind: "symlink", body: "b/z"},
			{path: "c.d", kind: "dir"},
			{path: "c.d/x", kind: "file", body: "x"},
			{path: "c", kind: "file", body: "c"},
		}
		for i := range nodes {
			nodes[i].mtime = base.Add(time.Duration(i) * 1700 * time.Millisecond)
		}
		if reverse { // same tree, other creation order (parents still first)
			nodes = []plainNode{nodes[7], nodes[5], nodes[6], nodes[4], nodes[0], nodes[2], nodes[3], nodes[1]}
		}
		return nodes
	}
	one := filepath.Join(t.TempDir(), "one")
	two := filepath.Join(t.TempDir(), "elsewhere", "two")
	must(t, os.MkdirAll(one, 0o755))
	must(t, os.MkdirAll(two, 0o755))
	makePlainTree(t, one, tree(sourceDateEpoch.Add(24*time.Hour), false))
	makePlainTree(t, two, tree(sourceDateEpoch.Add(90*24*time.Hour+123*time.Millisecond), true))

	write := func(dir string, opts WriteOptions) []byte {
		var buf bytes.Buffer
		must(t, Write(&buf, dir, opts))
		return buf.Bytes()
	}
	a, b := write(one, WriteOptions{SourceDateEpoch: &sourceDateEpoch}), write(two, WriteOptions{SourceDateEpoch: &sourceDateEpoch})
	if !bytes.Equal(a, b) {
		t.Errorf("two copies of one tree give different tars with an epoch:\n%s\n%s", listing(t, a), listing(t, b))
	}
	if bytes.Equal(write(one, WriteOptions{}), write(two, WriteOptions{})) {
		t.Errorf("without an epoch the copies gave equal tars: the test cannot tell")
	}
}

func listing(t testing.TB, data []byte) string {
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out.String()
		}
		must(t, err)
		fmt.Fprintf(&out, "%c %s -> %s %d\n", hdr.Typeflag, hdr.Name, hdr.Linkname, hdr.ModTime.Unix())
	}
}

// TestCompressDeterministic compresses the same input cut into writes of
// different sizes under different GOMAXPROCS: the output must not change.
func TestCompressDeterministic(t *testing.T) {
	// Half random, half repetitive, over several pgzip and zstd blocks.
	data := []byte(randomString(t, 3<<20) + string(bytes.Repeat([]byte("slimbuild layer "), 1<<18)))
	compress := func(kind string, procs, chunk int) []byte {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		var buf bytes.Buffer
		zw, err := Compress(&buf, kind)
		must(t, err)
		for off := 0; off < len(data); off += chunk {
			_, err := zw.Write(data[off:min(off+chunk, len(data))])
			must(t, err)
		}
		must(t, zw.Close())
		return buf.Bytes()
	}
	for _, kind := range []string{Gzip, Zstd} {
		t.Run(kind, func(t *testing.T) {
			ref := compress(kind, 1, 1<<20)
			for _, c := range []struct{ procs, chunk int }{{2, 4093}, {8, 1 << 16}, {3, 5 << 20}} {
				if got := compress(kind, c.procs, c.chunk); !bytes.Equal(got, ref) {
					t.Errorf("GOMAXPROCS %d, writes of %d bytes: %d bytes of output differ from the %d of GOMAXPROCS 1",
						c.procs, c.chunk, len(got), len(ref))
				}
			}
		})
	}
}

// TestGzipHeader checks that the gzip header carries no time, name or comment.
func TestGzipHeader(t *testing.T) {
	var buf bytes.Buffer
	zw, err := Compress(&buf, Gzip)
	must(t, err)
	_, err = zw.Write([]byte("layer"))
	must(t, err)
	must(t, zw.Close())
	b := buf.Bytes()
	if len(b) < 10 {
		t.Fatalf("gzip stream of %d bytes", len(b))
	}
	if flg := b[3]; flg != 0 {
		t.Errorf("gzip FLG = %#x, want 0 (no name, comment or extra field)", flg)
	}
	if !bytes.Equal(b[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip MTIME = % x, want zero", b[4:8])
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	must(t, err)
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.Extra != nil {
		t.Errorf("gzip header %+v, want empty", zr.Header)
	}
}

// TestClampTimes checks that an unpacked layer dir can be made to match its
// clamped tar, and that a symlink in it never lets the clamp reach its target.
func TestClampTimes(t *testing.T) {
	later := sourceDateEpoch.Add(time.Hour)
	earlier := sourceDateEpoch.Add(-time.Hour)
	outside := filepath.Join(t.TempDir(), "canary")
	must(t, os.WriteFile(outside, []byte("host file"), 0o644))
	must(t, os.Chtimes(outside, later, later))

	root := t.TempDir()
	makePlainTree(t, root, []plainNode{
		{path: "d", kind: "dir", mtime: later},
		{path: "d/new", kind: "file", body: "n", mtime: later},
		{path: "d/old", kind: "file", body: "o", mtime: earlier},
		{path: "d/escape", kind: "symlink", body: outside, mtime: earlier},
		{path: "late-link", kind: "symlink", body: outside, mtime: later},
	})
	must(t, ClampTimes(root, sourceDateEpoch))

	mtime := func(p string) time.Time {
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		return time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC()
	}
	for p, want := range map[string]time.Time{
		"d": sourceDateEpoch, "d/new": sourceDateEpoch, "d/old": earlier,
		"d/escape": earlier, "late-link": sourceDateEpoch,
	} {
		if got := mtime(filepath.Join(root, p)); !got.Equal(want) {
			t.Errorf("%s: mtime %v, want %v", p, got, want)
		}
	}
	if got := mtime(outside); !got.Equal(later.UTC()) {
		t.Errorf("the symlinks' target outside the dir got mtime %v, want it untouched (%v)", got, later)
	}

	// The dir now writes the same tar with or without the epoch.
	var with, without bytes.Buffer
	must(t, Write(&with, root, WriteOptions{SourceDateEpoch: &sourceDateEpoch}))
	must(t, Write(&without, root, WriteOptions{}))
	if !bytes.Equal(with.Bytes(), without.Bytes()) {
		t.Errorf("after ClampTimes the tar still depends on the epoch:\n%s\n%s", listing(t, with.Bytes()), listing(t, without.Bytes()))
	}
}
