package report

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"strings"
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

// TestDirCacheMatchesFreshLookups builds random layers (directories, files,
// symlinks to directories, entries replacing others, whiteouts) and checks that
// the union apply makes, with dirOf reusing the directory found last, is the one
// made by looking every entry's directory up afresh.
func TestDirCacheMatchesFreshLookups(t *testing.T) {
	names := []string{"a", "b", "c"}
	for seed := int64(1); seed <= 3000; seed++ {
		rng := rand.New(rand.NewSource(seed))
		randPath := func(dotdot bool) string {
			parts := make([]string, 1+rng.Intn(3))
			for i := range parts {
				parts[i] = names[rng.Intn(len(names))]
				if dotdot && rng.Intn(4) == 0 {
					parts[i] = ".."
				}
			}
			return strings.Join(parts, "/")
		}
		var layers []*layerScan
		for range 1 + rng.Intn(3) {
			ls := &layerScan{}
			for range rng.Intn(3) {
				ls.whiteouts = append(ls.whiteouts, randPath(false))
			}
			for range 4 + rng.Intn(12) {
				e := entry{path: randPath(false), mode: 0o755}
				switch rng.Intn(4) {
				case 0:
					e.kind = kindDir
				case 1:
					e.kind, e.size = kindReg, int64(1+rng.Intn(9))
				default:
					e.kind, e.linkname = kindSymlink, randPath(true) // ".." in a link: a/b/.. is a
					if rng.Intn(2) == 0 {
						e.linkname = "/" + e.linkname
					}
				}
				ls.entries = append(ls.entries, e)
			}
			layers = append(layers, ls)
		}
		cached, fresh := newUnionFS(len(layers), 10), newUnionFS(len(layers), 10)
		for i, ls := range layers {
			cached.apply(i, ls)
			fresh.applyFresh(i, ls)
		}
		if got, want := dumpTree(cached.root, ""), dumpTree(fresh.root, ""); got != want {
			t.Fatalf("seed %d: the union differs\ncached:\n%s\nfresh:\n%s", seed, got, want)
		}
		if cached.hiddenSize != fresh.hiddenSize || cached.hiddenCount != fresh.hiddenCount {
			t.Fatalf("seed %d: hidden %d/%d, want %d/%d", seed, cached.hiddenSize, cached.hiddenCount, fresh.hiddenSize, fresh.hiddenCount)
		}
	}
}

// applyFresh is apply with every entry's directory looked up from the root.
func (u *unionFS) applyFresh(layer int, ls *layerScan) {
	rest := *ls
	rest.entries = nil
	u.apply(layer, &rest)
	for _, e := range ls.entries {
		u.lastDir = nil
		u.insert(layer, e)
	}
}

func dumpTree(n *node, p string) string {
	var names []string
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		c := n.children[name]
		fmt.Fprintf(&b, "%s/%s kind=%d size=%d link=%s layer=%d\n", p, name, c.kind, c.size, c.linkname, c.layer)
		b.WriteString(dumpTree(c, p+"/"+name))
	}
	return b.String()
}
