package report

import (
	"bytes"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unionOf scans and applies the layers and returns the final regular files (path → size)
// and the hidden size.
func unionOf(t *testing.T, layers ...[]tf) (map[string]int64, int64, int) {
	t.Helper()
	u := newUnionFS(len(layers), 10)
	for i, l := range layers {
		ls, err := scanLayer(bytes.NewReader(tarBytes(t, l)))
		if err != nil {
			t.Fatalf("scanning layer %d: %v", i, err)
		}
		u.apply(i, ls)
	}
	files := map[string]int64{}
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		if n.kind == kindReg {
			files[p] = n.size
		}
		for _, c := range n.children {
			walk(c, p+"/"+c.name)
		}
	}
	for _, c := range u.root.children {
		walk(c, "/"+c.name)
	}
	return files, u.hiddenSize, u.hiddenCount
}

func TestUnionSemantics(t *testing.T) {
	for _, tc := range []struct {
		name        string
		layers      [][]tf
		want        map[string]int64
		hidden      int64
		hiddenCount int
	}{
		{
			name:   "written once counts nothing",
			layers: [][]tf{{file("a", "12345", 0)}, {file("b", "1", 0)}},
			want:   map[string]int64{"/a": 5, "/b": 1},
		},
		{
			name:   "overwritten twice counts both lower copies",
			layers: [][]tf{{file("a", "1234", 0)}, {file("a", "12", 0)}, {file("a", "1", 0)}},
			want:   map[string]int64{"/a": 1}, hidden: 6, hiddenCount: 2,
		},
		{
			name:   "whiteout of a directory hides its subtree",
			layers: [][]tf{{dir("d/", 0), file("d/x", "123", 0), file("d/e/y", "45", 0)}, {whiteout(".wh.d")}},
			want:   map[string]int64{}, hidden: 5, hiddenCount: 2,
		},
		{
			name:   "whiteout does not hide what its own layer adds",
			layers: [][]tf{{file("a", "123", 0)}, {file("a", "1", 0), whiteout(".wh.a")}},
			want:   map[string]int64{"/a": 1}, hidden: 3, hiddenCount: 1,
		},
		{
			name:   "opaque hides lower entries only, marker before or after",
			layers: [][]tf{{file("o/a", "111", 0), file("p/a", "22", 0)}, {whiteout("o/.wh..wh..opq"), file("o/b", "4", 0), file("p/b", "5", 0), whiteout("p/.wh..wh..opq")}},
			want:   map[string]int64{"/o/b": 1, "/p/b": 1}, hidden: 5, hiddenCount: 2,
		},
		{
			name:   "whiteout of a missing path is harmless",
			layers: [][]tf{{file("a", "1", 0)}, {whiteout("nope/.wh.x"), whiteout(".wh.y")}},
			want:   map[string]int64{"/a": 1},
		},
		{
			name:   "file replaced by a directory",
			layers: [][]tf{{file("x", "1234", 0)}, {dir("x/", 0), file("x/y", "1", 0)}},
			want:   map[string]int64{"/x/y": 1}, hidden: 4, hiddenCount: 1,
		},
		{
			name:   "directory replaced by a file",
			layers: [][]tf{{file("x/y", "1234", 0), file("x/z", "1", 0)}, {file("x", "12", 0)}},
			want:   map[string]int64{"/x": 2}, hidden: 5, hiddenCount: 2,
		},
		{
			name:   "symlinked parent is followed (merged /usr)",
			layers: [][]tf{{dir("usr/bin/", 0), symlink("bin", "usr/bin")}, {file("bin/foo", "123", 0o755)}, {whiteout("bin/.wh.foo")}},
			want:   map[string]int64{}, hidden: 3, hiddenCount: 1,
		},
		{
			name:   "duplicate entry in one layer: the last one wins",
			layers: [][]tf{{file("a", "123", 0), file("a", "1", 0)}},
			want:   map[string]int64{"/a": 1}, hidden: 3, hiddenCount: 1,
		},
		{
			name:   "paths are cleaned",
			layers: [][]tf{{file("./a/../b", "12", 0), file("/c", "3", 0), file("../../d", "4", 0)}},
			want:   map[string]int64{"/b": 2, "/c": 1, "/d": 1},
		},
		{
			name:   "symlink loop in a parent does not hang",
			layers: [][]tf{{symlink("l1", "l2"), symlink("l2", "l1")}, {file("l1/x", "1", 0)}},
			want:   map[string]int64{"/l1/x": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, hidden, count := unionOf(t, tc.layers...)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("final files (-want +got):\n%s", d)
			}
			if hidden != tc.hidden || count != tc.hiddenCount {
				t.Errorf("hidden = %d in %d copies, want %d in %d", hidden, count, tc.hidden, tc.hiddenCount)
			}
		})
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"gcc": "gcc", "gcc-12": "gcc", "x86_64-linux-gnu-gcc-12": "gcc", "x86_64-alpine-linux-musl-gcc": "gcc",
		"g++-12": "g++", "c++": "c++", "x86_64-linux-gnu-ld.bfd": "ld.bfd", "clang-15": "clang",
		"python3": "python", "python3.11": "python", "python3-config": "python3-config", "pip3.11": "pip",
		"perl5.36.0": "perl", "apt-get": "apt-get", "dpkg-query": "dpkg-query", "sh": "sh", "lua5.4": "lua",
	} {
		if got := canonicalName(in); got != want {
			t.Errorf("canonicalName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		data     string
		anywhere bool
		want     uint8
	}{
		{"elf", "\x7fELF\x02", false, flagELF},
		{"short elf", "\x7fEL", false, 0},
		{"key at start", pemKey, false, flagPrivateKey},
		{"key after blank lines", "\n\n  " + pemKey, false, flagPrivateKey},
		{"openssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", false, flagPrivateKey},
		{"key after cert, not scanned", pemCert + pemKey, false, 0},
		{"key after cert, scanned", pemCert + pemKey, true, flagPrivateKey},
		{"public key", "-----BEGIN PUBLIC KEY-----\n", true, 0},
		{"mention in text", "the header -----BEGIN RSA PRIVATE KEY----- starts", true, 0},
		{"empty", "", true, 0},
	} {
		if got := sniff([]byte(tc.data), tc.anywhere); got != tc.want {
			t.Errorf("%s: sniff = %b, want %b", tc.name, got, tc.want)
		}
	}
}

func TestSecretName(t *testing.T) {
	var got []string
	for _, n := range []string{"id_rsa", "id_rsa.pub", ".env", ".env.local", ".env.example", "env", "id_ed25519", ".netrc", "config"} {
		if secretName(n) {
			got = append(got, n)
		}
	}
	sort.Strings(got)
	if d := cmp.Diff([]string{".env", ".env.local", ".netrc", "id_ed25519", "id_rsa"}, got); d != "" {
		t.Errorf("secret names (-want +got):\n%s", d)
	}
}

func TestTopFiles(t *testing.T) {
	tf := newTopFiles(3)
	for i, s := range []int64{5, 1, 9, 7, 3, 9} {
		tf.add(File{Path: string(rune('a' + i)), Size: s})
	}
	want := []File{{Path: "c", Size: 9}, {Path: "f", Size: 9}, {Path: "d", Size: 7}}
	if d := cmp.Diff(want, tf.list()); d != "" {
		t.Errorf("top files (-want +got):\n%s", d)
	}
}
