package layer

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, trusted.* xattrs); this process is not root")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// capV2 is a valid VFS_CAP_REVISION_2 security.capability value granting
// CAP_NET_BIND_SERVICE (permitted, effective).
var capV2 = string([]byte{
	0x01, 0x00, 0x00, 0x02, // magic_etc: revision 2 | effective
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // permitted, inheritable (low)
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // (high)
})

// node describes one path to create in a test tree.
type node struct {
	path     string
	kind     string // dir, file, symlink, hardlink, char, block, fifo, whiteout, socket
	mode     uint32
	uid, gid int
	body     string // file body, symlink or hard link target
	dev      [2]uint32
	xattrs   map[string]string
}

// makeTree creates nodes under root in order, then sets their times
// (children before parents so directory times stick).
func makeTree(t testing.TB, root string, nodes []node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		switch n.kind {
		case "dir":
			must(t, os.Mkdir(p, 0o700))
		case "file":
			must(t, os.WriteFile(p, []byte(n.body), 0o600))
		case "symlink":
			must(t, os.Symlink(n.body, p))
		case "hardlink":
			must(t, os.Link(filepath.Join(root, n.body), p))
			continue
		case "char":
			must(t, unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(n.dev[0], n.dev[1]))))
		case "block":
			must(t, unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(n.dev[0], n.dev[1]))))
		case "fifo":
			must(t, unix.Mkfifo(p, 0o600))
		case "whiteout":
			must(t, unix.Mknod(p, unix.S_IFCHR, 0))
		case "socket":
			l, err := net.Listen("unix", p)
			must(t, err)
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			continue
		default:
			t.Fatalf("bad node kind %q", n.kind)
		}
		must(t, os.Lchown(p, n.uid, n.gid))
		if n.kind != "symlink" && n.kind != "whiteout" {
			must(t, unix.Chmod(p, n.mode))
		}
		for k, v := range n.xattrs {
			must(t, unix.Lsetxattr(p, k, []byte(v), 0))
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i].kind == "socket" {
			continue
		}
		p := filepath.Join(root, nodes[i].path)
		ts := []unix.Timespec{timespec(epoch), timespec(epoch.Add(time.Duration(i) * time.Hour))}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func randomString(t testing.TB, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	must(t, err)
	return string(b)
}

// richTree has every kind of entry Write handles.
func richTree(t testing.TB) []node {
	return []node{
		{path: "a", kind: "dir", mode: 0o755},
		{path: "a/b", kind: "file", mode: 0o644, body: "b"},
		{path: "a.txt", kind: "file", mode: 0o644, body: "a.txt"},
		{path: "bin", kind: "dir", mode: 0o755},
		{path: "bin/ping", kind: "file", mode: 0o755, body: "ping", xattrs: map[string]string{"security.capability": capV2}},
		{path: "bin/su", kind: "file", mode: 0o4755, body: "su"},
		{path: "bin/wall", kind: "file", mode: 0o2755, gid: 5, body: "wall"},
		{path: "big", kind: "file", mode: 0o600, body: randomString(t, 3<<20+17)},
		{path: "deleted", kind: "whiteout", uid: 0},
		{path: "dev", kind: "dir", mode: 0o755},
		{path: "dev/fifo", kind: "fifo", mode: 0o620},
		{path: "dev/loop0", kind: "block", mode: 0o660, gid: 6, dev: [2]uint32{7, 0}},
		{path: "dev/null", kind: "char", mode: 0o666, dev: [2]uint32{1, 3}},
		{path: "dev/sock", kind: "socket"},
		{path: "empty", kind: "file", mode: 0o644},
		{path: "etc", kind: "dir", mode: 0o755},
		{path: "etc/abs", kind: "symlink", body: "/etc/passwd"},
		{path: "etc/passwd", kind: "file", mode: 0o644, body: "root:x:0:0::/root:/bin/sh\n"},
		{path: "etc/rel", kind: "symlink", body: "passwd"},
		{path: "etc/shadow", kind: "file", mode: 0o640, gid: 42, body: "root:*:::::::\n"},
		{path: "home", kind: "dir", mode: 0o755},
		{path: "home/u", kind: "dir", mode: 0o700, uid: 1000, gid: 1000, xattrs: map[string]string{"user.dir": "d"}},
		{path: "home/u/file", kind: "file", mode: 0o640, uid: 1000, gid: 1000, body: "data", xattrs: map[string]string{
			"user.note": "hi", "trusted.overlay.origin": "x", "user.overlay.redirect": "/x"}},
		{path: "home/u/hard", kind: "hardlink", body: "home/u/file"},
		{path: "home/u/wh", kind: "whiteout"},
		{path: "opq", kind: "dir", mode: 0o750, uid: 7, xattrs: map[string]string{overlayOpaqueXattr: "y"}},
		{path: "opq/new", kind: "file", mode: 0o644, body: "new"},
		{path: "notopq", kind: "dir", mode: 0o755, xattrs: map[string]string{overlayOpaqueXattr: "x"}},
		{path: "tmp", kind: "dir", mode: 0o1777},
		{path: "zz-hard", kind: "hardlink", body: "a/b"},
	}
}

// entry is the comparable summary of one tar header.
type entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Size     int64
	Link     string
	Dev      [2]int64
	Xattrs   map[string]string
	MTime    time.Time
}

func listTar(t testing.TB, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		if hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: uname/gname %q/%q, want empty", hdr.Name, hdr.Uname, hdr.Gname)
		}
		if !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: atime/ctime set", hdr.Name)
		}
		e := entry{Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			Size: hdr.Size, Link: hdr.Linkname, Dev: [2]int64{hdr.Devmajor, hdr.Devminor}, MTime: hdr.ModTime.UTC()}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		out = append(out, e)
	}
}

func writeTar(t testing.TB, dir string, opts WriteOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, Write(&buf, dir, opts))
	return buf.Bytes()
}

func TestWriteEntries(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	nodes := richTree(t)
	makeTree(t, dir, nodes)
	got := listTar(t, bytes.NewReader(writeTar(t, dir, WriteOptions{})))

	mt := func(i int) time.Time { return epoch.Add(time.Duration(i) * time.Hour).Truncate(time.Second) }
	want := []entry{
		{Name: ".wh.deleted", Type: tar.TypeReg, Mode: 0o600, MTime: mt(8)},
		{Name: "a/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(0)},
		{Name: "a/b", Type: tar.TypeReg, Mode: 0o644, Size: 1, MTime: mt(1)},
		{Name: "a.txt", Type: tar.TypeReg, Mode: 0o644, Size: 5, MTime: mt(2)},
		{Name: "big", Type: tar.TypeReg, Mode: 0o600, Size: 3<<20 + 17, MTime: mt(7)},
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(3)},
		{Name: "bin/ping", Type: tar.TypeReg, Mode: 0o755, Size: 4, MTime: mt(4), Xattrs: map[string]string{"security.capability": capV2}},
		{Name: "bin/su", Type: tar.TypeReg, Mode: 0o4755, Size: 2, MTime: mt(5)},
		{Name: "bin/wall", Type: tar.TypeReg, Mode: 0o2755, GID: 5, Size: 4, MTime: mt(6)},
		{Name: "dev/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(9)},
		{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o620, MTime: mt(10)},
		{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, GID: 6, Dev: [2]int64{7, 0}, MTime: mt(11)},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Dev: [2]int64{1, 3}, MTime: mt(12)},
		{Name: "empty", Type: tar.TypeReg, Mode: 0o644, MTime: mt(14)},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(15)},
		{Name: "etc/abs", Type: tar.TypeSymlink, Mode: 0o777, Link: "/etc/passwd", MTime: mt(16)},
		{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, Size: 26, MTime: mt(17)},
		{Name: "etc/rel", Type: tar.TypeSymlink, Mode: 0o777, Link: "passwd", MTime: mt(18)},
		{Name: "etc/shadow", Type: tar.TypeReg, Mode: 0o640, GID: 42, Size: 14, MTime: mt(19)},
		{Name: "home/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(20)},
		{Name: "home/u/", Type: tar.TypeDir, Mode: 0o700, UID: 1000, GID: 1000, MTime: mt(21), Xattrs: map[string]string{"user.dir": "d"}},
		{Name: "home/u/.wh.wh", Type: tar.TypeReg, Mode: 0o600, MTime: mt(24)},
		// The hard link's time (index 23) is the same inode's: set last.
		{Name: "home/u/file", Type: tar.TypeReg, Mode: 0o640, UID: 1000, GID: 1000, Size: 4, MTime: mt(22), Xattrs: map[string]string{"user.note": "hi"}},
		{Name: "home/u/hard", Type: tar.TypeLink, Mode: 0o640, UID: 1000, GID: 1000, Link: "home/u/file", MTime: mt(22)},
		{Name: "notopq/", Type: tar.TypeDir, Mode: 0o755, MTime: mt(27)},
		{Name: "opq/", Type: tar.TypeDir, Mode: 0o750, UID: 7, MTime: mt(25)},
		{Name: "opq/.wh..wh..opq", Type: tar.TypeReg, Mode: 0o600, UID: 7, MTime: mt(25)},
		{Name: "opq/new", Type: tar.TypeReg, Mode: 0o644, Size: 3, MTime: mt(26)},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, MTime: mt(28)},
		{Name: "zz-hard", Type: tar.TypeLink, Mode: 0o644, Link: "a/b", MTime: mt(1)},
	}
	// Hard-linked inodes carry the time set last (the link's node index is
	// skipped by makeTree, so the original's index wins).
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestWriteSkip(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	makeTree(t, dir, richTree(t))
	skip := func(rel string) bool {
		return rel == "home/u" || rel == "big" || rel == "deleted" || rel == "a/b"
	}
	var names []string
	for _, e := range listTar(t, bytes.NewReader(writeTar(t, dir, WriteOptions{Skip: skip}))) {
		names = append(names, e.Name)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "home/u/") || n == "big" || n == ".wh.deleted" || n == "a/b" {
			t.Errorf("skipped path %q was written", n)
		}
	}
	// a/b was skipped, so zz-hard (its hard link) must carry the body.
	got := listTar(t, bytes.NewReader(writeTar(t, dir, WriteOptions{Skip: skip})))
	last := got[len(got)-1]
	if last.Name != "zz-hard" || last.Type != tar.TypeReg || last.Size != 1 {
		t.Errorf("zz-hard = %+v, want a regular file of 1 byte", last)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	must(t, os.WriteFile(f, nil, 0o644))
	for name, d := range map[string]string{"missing": filepath.Join(dir, "nope"), "file": f} {
		t.Run(name, func(t *testing.T) {
			if err := Write(io.Discard, d, WriteOptions{}); err == nil {
				t.Errorf("Write(%q) succeeded", d)
			}
		})
	}
}

func statOf(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st
}

func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	makeTree(t, src, richTree(t))
	tar1 := writeTar(t, src, WriteOptions{})

	dst := filepath.Join(t.TempDir(), "lower")
	must(t, Unpack(bytes.NewReader(tar1), dst))
	tar2 := writeTar(t, dst, WriteOptions{})
	if !bytes.Equal(tar1, tar2) {
		t.Errorf("Write(Unpack(Write(dir))) differs from Write(dir):\n%s",
			cmp.Diff(listTar(t, bytes.NewReader(tar1)), listTar(t, bytes.NewReader(tar2))))
	}

	// Spot checks of the unpacked tree itself.
	if st := statOf(t, filepath.Join(dst, "deleted")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("deleted: mode %o rdev %d, want a 0:0 char device", st.Mode, st.Rdev)
	}
	fi, err := os.Lstat(filepath.Join(dst, "deleted"))
	must(t, err)
	if !IsWhiteout(fi) {
		t.Error("IsWhiteout(deleted) = false")
	}
	fi, err = os.Lstat(filepath.Join(dst, "dev/null"))
	must(t, err)
	if IsWhiteout(fi) {
		t.Error("IsWhiteout(dev/null) = true")
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dst, "opq"), overlayOpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq opaque xattr = %q, %v; want y", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dst, "notopq"), overlayOpaqueXattr, buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("notopq: opaque xattr err = %v, want ENODATA", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "opq", OpaqueWhiteout)); !os.IsNotExist(err) {
		t.Errorf("opaque marker file exists in unpacked dir: %v", err)
	}
	if a, b := statOf(t, filepath.Join(dst, "home/u/file")), statOf(t, filepath.Join(dst, "home/u/hard")); a.Ino != b.Ino {
		t.Error("hard link not preserved")
	}
	if st := statOf(t, filepath.Join(dst, "bin/su")); st.Mode&0o7777 != 0o4755 {
		t.Errorf("bin/su mode %o, want 4755", st.Mode&0o7777)
	}
	// Directory times are kept although children were created after them.
	if st := statOf(t, filepath.Join(dst, "home/u")); !time.Unix(st.Mtim.Unix()).Equal(epoch.Add(21 * time.Hour).Truncate(time.Second)) {
		t.Errorf("home/u mtime %v", time.Unix(st.Mtim.Unix()))
	}
	n, err = unix.Lgetxattr(filepath.Join(dst, "home/u/file"), "trusted.overlay.origin", buf)
	if !errors.Is(err, unix.ENODATA) {
		t.Errorf("trusted.overlay.origin leaked into the layer: %q, %v", buf[:n], err)
	}
}
