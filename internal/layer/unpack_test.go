package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tent is one entry of a hand-made test tar.
type tent struct {
	name string
	typ  byte
	body string // file body or link target
	mode int64
}

func buildTar(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		switch e.typ {
		case tar.TypeReg:
			hdr.Size = int64(len(e.body))
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Linkname = e.body
		}
		must(t, tw.WriteHeader(hdr))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func reg(name, body string) tent   { return tent{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) tent         { return tent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) tent { return tent{name: name, typ: tar.TypeSymlink, body: to} }
func hardlink(name, to string) tent {
	return tent{name: name, typ: tar.TypeLink, body: to}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

func isOpaque(p string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(p, overlayOpaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y"
}

func kindOf(t testing.TB, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "missing"
		}
		t.Fatal(err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if isOpaque(p) {
			return "opaque-dir"
		}
		return "dir"
	case unix.S_IFREG:
		return "file:" + readFile(t, p)
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		must(t, err)
		return "symlink:" + target
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			return "whiteout"
		}
		return "char"
	}
	return "other"
}

// TestUnpackEscapes feeds layers that try to write, link or mark paths
// outside the target directory and checks that nothing outside changes.
func TestUnpackEscapes(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		// ents gets the absolute path of a directory outside the target,
		// holding a file "secret".
		ents    func(outside string) []tent
		wantErr string
		// want maps paths inside the target to kindOf results; "{o}" in
		// keys is the outside dir's path without its leading slash, "{O}"
		// in values the outside dir's path.
		want map[string]string
	}{
		{
			name: "dotdot name",
			ents: func(string) []tent { return []tent{reg("../../evil", "x")} },
			want: map[string]string{"evil": "file:x"},
		},
		{
			name: "absolute name",
			ents: func(string) []tent { return []tent{reg("/abs/evil", "x")} },
			want: map[string]string{"abs": "dir", "abs/evil": "file:x"},
		},
		{
			name: "dotdot inside name",
			ents: func(string) []tent { return []tent{reg("a/../../../b/../evil", "x")} },
			want: map[string]string{"evil": "file:x", "a": "missing"},
		},
		{
			name: "symlink to root then write below",
			ents: func(string) []tent { return []tent{symlink("ln", "/"), reg("ln/evil", "x")} },
			want: map[string]string{"evil": "file:x", "ln": "symlink:/"},
		},
		{
			name: "relative symlink climbing out",
			ents: func(string) []tent { return []tent{symlink("a/ln", "../../../../.."), reg("a/ln/evil", "x")} },
			want: map[string]string{"evil": "file:x"},
		},
		{
			name: "absolute symlink to host dir",
			ents: func(o string) []tent { return []tent{symlink("ln", o), reg("ln/secret", "pwned")} },
			want: map[string]string{"{o}/secret": "file:pwned"},
		},
		{
			name: "chained symlinks",
			ents: func(o string) []tent {
				return []tent{symlink("l1", "l2"), symlink("l2", "../"+strings.Repeat("../", 8)+o[1:]), reg("l1/secret", "pwned")}
			},
			want: map[string]string{"{o}/secret": "file:pwned"},
		},
		{
			name: "write over final symlink",
			ents: func(o string) []tent { return []tent{symlink("f", o+"/secret"), reg("f", "pwned")} },
			want: map[string]string{"f": "file:pwned"},
		},
		{
			name: "dir over final symlink",
			ents: func(o string) []tent { return []tent{symlink("d", o), tent{name: "d/", typ: tar.TypeDir, mode: 0o777}} },
			want: map[string]string{"d": "dir"},
		},
		{
			name:    "hard link with dotdot",
			ents:    func(string) []tent { return []tent{hardlink("hl", "../outside/secret")} },
			wantErr: `unpacking "hl"`,
		},
		{
			name: "hard link to absolute host path",
			ents: func(o string) []tent {
				return []tent{hardlink("hl", o+"/secret")}
			},
			wantErr: `unpacking "hl"`,
		},
		{
			name:    "hard link through symlink",
			ents:    func(o string) []tent { return []tent{symlink("ln", o), hardlink("hl", "ln/secret")} },
			wantErr: `unpacking "hl"`,
		},
		{
			name: "hard link to symlink stays a link to the symlink",
			ents: func(o string) []tent { return []tent{symlink("ln", o+"/secret"), hardlink("hl", "ln")} },
			want: map[string]string{"hl": "symlink:{O}/secret", "ln": "symlink:{O}/secret"},
		},
		{
			name: "whiteout through symlink",
			ents: func(o string) []tent { return []tent{symlink("ln", o), reg("ln/.wh.secret", "")} },
			want: map[string]string{"{o}/secret": "whiteout"},
		},
		{
			name: "opaque through symlink",
			ents: func(o string) []tent { return []tent{symlink("ln", o), reg("ln/.wh..wh..opq", "")} },
			want: map[string]string{"{o}": "opaque-dir"},
		},
		{
			name:    "whiteout of dotdot",
			ents:    func(string) []tent { return []tent{reg("a/.wh...", "")} },
			wantErr: `unpacking "a/.wh..."`,
		},
		{
			// Directory times are applied last: by then a later entry has
			// put a symlink to the outside dir's parent where a/ was.
			name: "dir times through a later symlink",
			ents: func(o string) []tent {
				return []tent{dir("a/"), dir("a/" + filepath.Base(o) + "/"), symlink("a", filepath.Dir(o))}
			},
			want: map[string]string{"a": "symlink:{B}"},
		},
		{
			name: "dir times through a later relative symlink",
			ents: func(o string) []tent {
				up := strings.Repeat("../", 40) + filepath.Dir(o)[1:]
				return []tent{dir("d/"), dir("d/a/"), dir("d/a/" + filepath.Base(o) + "/"), symlink("d/a", up)}
			},
			want: map[string]string{"d": "dir"},
		},
		{
			name:    "hard link to root",
			ents:    func(string) []tent { return []tent{hardlink("hl", "./")} },
			wantErr: `unpacking "hl"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			must(t, os.Mkdir(outside, 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
			outsideTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			must(t, os.Chtimes(outside, outsideTime, outsideTime))
			root := filepath.Join(base, "root")

			err := Unpack(bytes.NewReader(buildTar(t, tc.ents(outside)...)), root)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Unpack: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Unpack succeeded, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Unpack error %q does not contain %q", err, tc.wantErr)
			}

			// Nothing outside root changed.
			names, err := os.ReadDir(outside)
			must(t, err)
			if len(names) != 1 || names[0].Name() != "secret" {
				t.Errorf("outside dir now holds %v", names)
			}
			if got := kindOf(t, filepath.Join(outside, "secret")); got != "file:secret" {
				t.Errorf("outside secret is now %s", got)
			}
			if st := statOf(t, filepath.Join(outside, "secret")); st.Nlink != 1 || st.Mode&0o7777 != 0o600 {
				t.Errorf("outside secret: nlink %d mode %o", st.Nlink, st.Mode&0o7777)
			}
			if isOpaque(outside) {
				t.Error("outside dir was marked opaque")
			}
			if st := statOf(t, outside); st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("outside dir: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
			}
			if fi, err := os.Stat(outside); err != nil || !fi.ModTime().Equal(outsideTime) {
				t.Errorf("outside dir's mtime changed to %v", fi.ModTime())
			}
			top, err := os.ReadDir(base)
			must(t, err)
			if len(top) != 2 {
				t.Errorf("base dir holds %d entries, want outside and root", len(top))
			}
			for p, want := range tc.want {
				p = strings.ReplaceAll(p, "{o}", outside[1:])
				want = strings.ReplaceAll(want, "{O}", outside)
				want = strings.ReplaceAll(want, "{B}", base)
				if got := kindOf(t, filepath.Join(root, p)); got != want {
					t.Errorf("%s: got %s, want %s", p, got, want)
				}
			}
		})
	}
}

func TestUnpackXattrFilter(t *testing.T) {
	requireRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX,
		PAXRecords: map[string]string{
			paxXattrPrefix + "trusted.overlay.opaque":   "y",
			paxXattrPrefix + "trusted.overlay.redirect": "/etc",
			paxXattrPrefix + "user.overlay.opaque":      "y",
			paxXattrPrefix + "user.keep":                "k",
		}}))
	must(t, tw.Close())
	root := t.TempDir()
	must(t, Unpack(&buf, root))
	d := filepath.Join(root, "d")
	if isOpaque(d) {
		t.Error("trusted.overlay.opaque from a PAX record was applied")
	}
	b := make([]byte, 16)
	for _, name := range []string{"trusted.overlay.redirect", "user.overlay.opaque"} {
		if _, err := unix.Lgetxattr(d, name, b); !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s: err %v, want ENODATA", name, err)
		}
	}
	n, err := unix.Lgetxattr(d, "user.keep", b)
	if err != nil || string(b[:n]) != "k" {
		t.Errorf("user.keep = %q, %v", b[:n], err)
	}
}

func TestUnpackSemantics(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		ents    []tent
		want    map[string]string
		wantErr string
	}{
		{"whiteout", []tent{reg(".wh.a", "")}, map[string]string{"a": "whiteout", ".wh.a": "missing"}, ""},
		{"whiteout in subdir creates parent", []tent{reg("x/y/.wh.a", "")}, map[string]string{"x/y": "dir", "x/y/a": "whiteout"}, ""},
		{"file then whiteout keeps file", []tent{reg("a", "1"), reg(".wh.a", "")}, map[string]string{"a": "file:1"}, ""},
		{"whiteout then file", []tent{reg(".wh.a", ""), reg("a", "1")}, map[string]string{"a": "file:1"}, ""},
		{"whiteout then dir is opaque", []tent{reg(".wh.d", ""), dir("d/"), reg("d/f", "1")}, map[string]string{"d": "opaque-dir", "d/f": "file:1"}, ""},
		{"dir then whiteout is opaque", []tent{dir("d/"), reg(".wh.d", "")}, map[string]string{"d": "opaque-dir"}, ""},
		{"opaque marker", []tent{dir("d/"), reg("d/.wh..wh..opq", ""), reg("d/f", "1")}, map[string]string{"d": "opaque-dir", "d/.wh..wh..opq": "missing"}, ""},
		{"opaque marker before its dir", []tent{reg("d/.wh..wh..opq", ""), dir("d/")}, map[string]string{"d": "opaque-dir"}, ""},
		{"aufs metadata ignored", []tent{reg(".wh..wh.plnk", ""), dir(".wh..wh.orph/")}, map[string]string{".wh..wh.plnk": "missing", "plnk": "missing"}, ""},
		{"later file wins", []tent{reg("f", "1"), reg("f", "2")}, map[string]string{"f": "file:2"}, ""},
		{"symlink replaces file", []tent{reg("f", "1"), symlink("f", "t")}, map[string]string{"f": "symlink:t"}, ""},
		{"file replaces dir tree", []tent{dir("d/"), reg("d/f", "1"), reg("d", "2")}, map[string]string{"d": "file:2"}, ""},
		{"dir repeated keeps children", []tent{dir("d/"), reg("d/f", "1"), dir("d/")}, map[string]string{"d/f": "file:1"}, ""},
		{"rewrite does not write through hard link", []tent{reg("a", "1"), hardlink("b", "a"), reg("b", "2")}, map[string]string{"a": "file:1", "b": "file:2"}, ""},
		{"dot slash names", []tent{dir("./"), dir("./x/"), reg("./x/f", "1")}, map[string]string{"x/f": "file:1"}, ""},
		{"missing hard link target", []tent{hardlink("b", "a")}, nil, `unpacking "b"`},
		{"unsupported type", []tent{{name: "c", typ: tar.TypeCont}}, nil, `unpacking "c": unsupported`},
		{"root as file", []tent{reg(".", "")}, nil, `unpacking "."`},
		{"file below a file", []tent{reg("f", "1"), reg("f/g", "2")}, nil, `unpacking "f/g"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			err := Unpack(bytes.NewReader(buildTar(t, tc.ents...)), root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Unpack error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			for p, want := range tc.want {
				if got := kindOf(t, filepath.Join(root, p)); got != want {
					t.Errorf("%s: got %s, want %s", p, got, want)
				}
			}
		})
	}
}

func TestUnpackMetadata(t *testing.T) {
	requireRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o711, Uid: 3, Gid: 4, ModTime: mt},
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: 5, Gid: 6, ModTime: mt},
		{Name: "d/suid", Typeflag: tar.TypeReg, Mode: 0o4750, Uid: 7, Gid: 8, ModTime: mt},
		{Name: "p/q/r", Typeflag: tar.TypeFifo, Mode: 0o640, ModTime: mt},
		{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "nowhere", Uid: 9, Gid: 9, ModTime: mt},
	} {
		h.Format = tar.FormatPAX
		must(t, tw.WriteHeader(h))
	}
	must(t, tw.Close())
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	root := t.TempDir()
	must(t, Unpack(&buf, root))

	check := func(rel string, mode uint32, uid, gid uint32, checkTime bool) {
		t.Helper()
		st := statOf(t, filepath.Join(root, rel))
		if st.Mode&0o7777 != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", rel, st.Mode&0o7777, st.Uid, st.Gid, mode, uid, gid)
		}
		if checkTime && !time.Unix(st.Mtim.Unix()).Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", rel, time.Unix(st.Mtim.Unix()), mt)
		}
	}
	check("", 0o711, 3, 4, true)
	check("d", 0o1777, 5, 6, true)
	check("d/suid", 0o4750, 7, 8, true)
	check("p", 0o755, 0, 0, false) // implicit parent: 0755 despite umask 077
	check("p/q", 0o755, 0, 0, false)
	check("p/q/r", 0o640, 0, 0, true)
	check("l", 0o777, 9, 9, true)
}

func TestUnpackNotEmpty(t *testing.T) {
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "x"), nil, 0o644))
	err := Unpack(bytes.NewReader(buildTar(t, reg("a", "1"))), root)
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Unpack into non-empty dir: %v, want ErrNotEmpty", err)
	}
}

func TestUnpackTruncated(t *testing.T) {
	requireRoot(t)
	b := buildTar(t, reg("a", strings.Repeat("x", 5000)))
	err := Unpack(bytes.NewReader(b[:2048]), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("Unpack of truncated tar: %v, want an error naming entry a", err)
	}
}
