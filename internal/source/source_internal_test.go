package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// These tests need no root: they read and hash sources and plan copies, they
// do not place files with owners.

// memCache is a StatCache in memory.
type memCache struct {
	data map[string][]byte
	puts int
}

func (m *memCache) StatCache(name string) ([]byte, error) {
	d, ok := m.data[name]
	if !ok {
		return nil, os.ErrNotExist
	}
	// The caller owns what it gets (decodeStats keeps pointing into it).
	return bytes.Clone(d), nil
}

func (m *memCache) PutStatCache(name string, data []byte) error {
	if m.data == nil {
		m.data = map[string][]byte{}
	}
	m.data[name] = bytes.Clone(data)
	m.puts++
	return nil
}

var _ StatCache = (*memCache)(nil)

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openTestContext(t testing.TB, dir string) *Context {
	t.Helper()
	c, err := OpenContext(&memCache{}, dir, filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMatchContained: sources, COPY --parents pivots and patterns that point
// outside the context, by ".." or through a symlink to the host's /etc, are
// refused or resolved inside the context; no matched item lies outside it.
func TestMatchContained(t *testing.T) {
	outer, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, outer, map[string]string{"secret": "host secret\n"})
	dir := filepath.Join(outer, "ctx")
	writeTree(t, dir, map[string]string{"sub/ok.txt": "fine\n", "sub/inner/x.txt": "x\n"})
	if err := os.Symlink("/etc", filepath.Join(dir, "etclink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	c := openTestContext(t, dir)
	for _, tc := range []struct {
		name    string
		parents bool
		src     string
	}{
		{"dotdot source", false, "../secret"},
		{"dotdot glob", false, "../*"},
		{"symlink to a host dir", false, "etclink/passwd"},
		{"relative symlink out", false, "up"},
		{"glob through a symlink", false, "etclink/pass*"},
		{"parents dotdot", true, "../secret"},
		{"parents dotdot pivot", true, "../././secret"},
		{"parents pattern climbing out", true, "./sub/./../../secret"},
		{"parents pivot through a symlink", true, "./etclink/./passwd"},
		{"parents pattern through a symlink", true, "etclink/passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMatcher(tc.parents, nil)
			if err != nil {
				t.Fatal(err)
			}
			items, err := m.Match(dir, []string{tc.src}, c)
			if err != nil {
				return // refused
			}
			for _, it := range items {
				// The item is read through its host path, following links.
				real, err := filepath.EvalSymlinks(it.host)
				if err != nil {
					t.Fatal(err)
				}
				if real != dir && !strings.HasPrefix(real, dir+"/") {
					t.Errorf("%s matched %s (%s), outside the context", tc.src, it.host, real)
				}
			}
		})
	}
}

// TestMatch: plain paths must exist, globs match what exists (never what
// .dockerignore removes), naming an ignored source is an error naming
// .dockerignore, and --exclude gives directories a filter.
func TestMatch(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore": "*.log\nsecret/\n",
		"a.txt":         "a", "b.txt": "b", "c.log": "c",
		"secret/key": "k", "src/main.c": "m", "src/debug.log": "d",
	})
	c := openTestContext(t, dir)
	rels := func(items []Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.rel)
		}
		sort.Strings(out)
		return out
	}
	m, _ := NewMatcher(false, nil)
	for _, tc := range []struct {
		name, src string
		want      []string
		err       string
	}{
		{name: "file", src: "a.txt", want: []string{"a.txt"}},
		{name: "glob", src: "*", want: []string{".dockerignore", "a.txt", "b.txt", "src"}},
		{name: "glob txt", src: "?.txt", want: []string{"a.txt", "b.txt"}},
		{name: "missing", src: "nope.txt", err: "not found"},
		{name: "ignored file", src: "c.log", err: ".dockerignore"},
		{name: "ignored dir", src: "secret", err: ".dockerignore"},
		{name: "bad pattern", src: "[", err: "bad pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := m.Match(dir, []string{tc.src}, c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rels(items)); diff != "" {
				t.Errorf("matched (-want +got):\n%s", diff)
			}
		})
	}
	ex, err := NewMatcher(false, []string{"*.c"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := ex.Match(dir, []string{"src", "a.txt"}, c)
	if err != nil {
		t.Fatal(err)
	}
	if items[0].filter == nil || items[0].filter.keep("main.c") || !items[0].filter.keep("other") {
		t.Errorf("--exclude=*.c: directory filter %+v does not drop main.c alone", items[0].filter)
	}
	if items[1].filter != nil {
		t.Error("a file source got a filter")
	}
	if _, err := NewMatcher(false, []string{"["}); err == nil || !strings.Contains(err.Error(), "--exclude") {
		t.Errorf("bad --exclude: err = %v", err)
	}
}

// TestInContextKey: the digest of a COPY's context sources changes with what
// it copies (content, mode, a new file) and not with what .dockerignore or
// --exclude leave out.
func TestInContextKey(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore": "src/ignored.txt\n",
		"src/a.txt":     "a", "src/debug.log": "1", "src/ignored.txt": "i",
	})
	m, err := NewMatcher(false, []string{"*.log"})
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		t.Helper()
		// A new Context each time: its stat cache must not hide changes.
		_, sum, err := m.InContext(openTestContext(t, dir), []string{"src"})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	first := key()
	for _, tc := range []struct {
		name   string
		change func()
		same   bool
	}{
		{"excluded file", func() { writeTree(t, dir, map[string]string{"src/debug.log": "2"}) }, true},
		{"ignored file", func() { writeTree(t, dir, map[string]string{"src/ignored.txt": "j"}) }, true},
		{"new excluded file", func() { writeTree(t, dir, map[string]string{"src/more.log": "x"}) }, true},
		{"kept content", func() { writeTree(t, dir, map[string]string{"src/a.txt": "b"}) }, false},
		{"kept mode", func() { os.Chmod(filepath.Join(dir, "src/a.txt"), 0o755) }, false},
		{"new kept file", func() { writeTree(t, dir, map[string]string{"src/new.txt": "n"}) }, false},
	} {
		tc.change()
		got := key()
		if (got == first) != tc.same {
			t.Errorf("%s: key changed %v, want %v", tc.name, got != first, !tc.same)
		}
		first = got
	}
	if _, _, err := m.InContext(openTestContext(t, dir), []string{"src/*.none"}); err == nil || !strings.Contains(err.Error(), "matched nothing") {
		t.Errorf("a pattern matching nothing: err = %v", err)
	}
}

// TestStatCacheSameSizeEdit: an edit that keeps size and mtime (touch -d back)
// is still seen, because the cached entry also holds ctime; the cache is saved
// and reused by the next Context.
func TestStatCacheSameSizeEdit(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "aaaa"})
	p := filepath.Join(dir, "f")
	mt := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	cache := &memCache{}
	digest := func() string {
		t.Helper()
		c, err := OpenContext(cache, dir, filepath.Join(dir, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		d, err := c.fileDigest(p, &st)
		if err != nil {
			t.Fatal(err)
		}
		c.Save()
		return hex.EncodeToString(d[:])
	}
	first := digest()
	if cache.puts != 1 {
		t.Fatalf("stat cache saved %d times, want 1", cache.puts)
	}
	if again := digest(); again != first || cache.puts != 1 {
		t.Errorf("unchanged file: digest %s (want %s), saves %d (want 1: nothing changed)", again, first, cache.puts)
	}
	// ctime moves on at a coarse tick: make sure it differs.
	time.Sleep(20 * time.Millisecond)
	writeTree(t, dir, map[string]string{"f": "bbbb"})
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	if edited := digest(); edited == first {
		t.Error("an edit with the same size and mtime kept the cached digest")
	}
}

// TestDecodeStats: the stat cache file round-trips, and anything malformed,
// truncated, extended or claiming more entries than it holds is rejected
// rather than read half.
func TestDecodeStats(t *testing.T) {
	sum := func(b byte) (d [sha256.Size]byte) {
		for i := range d {
			d[i] = b
		}
		return d
	}
	stats := map[string]statEntry{
		"a":     {Size: 1, Mtime: 2, Ctime: 3, Dev: 4, Ino: 5, Mode: 0o644, Digest: sum(0xab)},
		"dir/b": {Size: 10, Mtime: 20, Ctime: 30, Dev: 40, Ino: 50, Mode: 0o755, Digest: sum(0xcd)},
	}
	var buf bytes.Buffer
	encodeStats(&buf, statTable{}, stats)
	got, ok := decodeStats(bytes.Clone(buf.Bytes()))
	if !ok {
		t.Fatal("round trip: not ok")
	}
	if diff := cmp.Diff(stats, tableMap(got)); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Saved again with one entry changed and one added: the new ones win.
	changed := stats["a"]
	changed.Size = 7
	buf.Reset()
	encodeStats(&buf, got, map[string]statEntry{"a": changed, "c": stats["a"]})
	again, ok := decodeStats(buf.Bytes())
	want := map[string]statEntry{"a": changed, "dir/b": stats["dir/b"], "c": stats["a"]}
	if !ok {
		t.Fatal("merged: not ok")
	}
	if diff := cmp.Diff(want, tableMap(again)); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
	buf.Reset()
	encodeStats(&buf, statTable{}, stats)
	// Cut anywhere, the file is rejected whole.
	data := buf.Bytes()
	for n := 0; n < len(data); n++ {
		if part, ok := decodeStats(data[:n]); ok {
			t.Errorf("truncated to %d of %d bytes: accepted with %d entries", n, len(data), len(part.index))
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"another version", []byte("slimbuild-stat-cache-2\n")},
		{"trailing bytes", append(bytes.Clone(data), 0)},
		// A count that the bytes cannot hold would size a huge map.
		{"count beyond the data", binary.AppendUvarint([]byte(statMagic), 1<<40)},
		{"empty path", append(binary.AppendUvarint([]byte(statMagic), 1), make([]byte, minStatEntry)...)},
	} {
		if _, ok := decodeStats(tc.data); ok {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// Memory stays bounded by the file: a short file claiming millions of
	// entries does not get a map sized for them.
	claim := append(binary.AppendUvarint([]byte(statMagic), 1<<22), make([]byte, 2*minStatEntry)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decodeStats(claim)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("a %d-byte cache claiming %d entries allocated %d bytes", len(claim), 1<<22, n)
	}
}

// tableMap is every entry of t.
func tableMap(t statTable) map[string]statEntry {
	m := map[string]statEntry{}
	for p := range t.index {
		m[p], _ = t.get(p)
	}
	return m
}

// TestFileMode: the mode made from a raw lstat is os.Lstat's, for every kind
// of file and the setuid, setgid and sticky bits (the cache key hashes it).
func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "x", "d/g": "y"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("f", filepath.Join(dir, "link")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	must(os.Chmod(filepath.Join(dir, "f"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
	must(os.Chmod(filepath.Join(dir, "d"), 0o1777|fs.ModeSticky))
	paths := []string{"f", "d", "d/g", "link", "fifo"}
	for _, p := range paths {
		p = filepath.Join(dir, p)
		fi, err := os.Lstat(p)
		must(err)
		var st syscall.Stat_t
		must(syscall.Lstat(p, &st))
		if got := fileMode(st.Mode); got != fi.Mode() {
			t.Errorf("%s: fileMode = %v, os.Lstat says %v", p, got, fi.Mode())
		}
	}
	for _, p := range []string{"/dev/null", "/"} {
		fi, err := os.Lstat(p)
		must(err)
		var st syscall.Stat_t
		must(syscall.Lstat(p, &st))
		if got := fileMode(st.Mode); got != fi.Mode() {
			t.Errorf("%s: fileMode = %v, os.Lstat says %v", p, got, fi.Mode())
		}
	}
}

// TestStatCacheKeys: the cache keeps paths relative to the context (also
// when the context is named with a trailing slash), and the next Context of
// the same directory finds them: the file is not read again.
func TestStatCacheKeys(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"src/a.txt": "aaaa"})
	cache := &memCache{}
	c, err := OpenContext(cache, dir+"/", filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "src/a.txt")
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := c.fileDigest(p, &st); err != nil {
		t.Fatal(err)
	}
	c.Save()
	for name, data := range cache.data {
		stats, ok := decodeStats(data)
		if !ok {
			t.Fatalf("cache %s: not readable", name)
		}
		if _, ok := stats.get("src/a.txt"); !ok || len(stats.index) != 1 {
			t.Errorf("cache %s: %d entries, want one for src/a.txt", name, len(stats.index))
		}
	}
	// The next Context of the same directory hits the cache: nothing is
	// dirty, nothing saved.
	c2, err := OpenContext(cache, dir+"/", filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.fileDigest(p, &st); err != nil {
		t.Fatal(err)
	}
	c2.Save()
	if c2.dirty || cache.puts != 1 {
		t.Errorf("unchanged file: dirty %v, saves %d (want false, 1)", c2.dirty, cache.puts)
	}
}

// TestDownload: a download lands in tmp with mode 0600 and the server's
// Last-Modified, named after the URL's last element (index.html for none);
// a checksum mismatch or an HTTP error leaves nothing behind.
func TestDownload(t *testing.T) {
	body := "payload\n"
	modified := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, path, checksum string
		wantName, err        string
	}{
		{name: "file", path: "/dl/tool.txt", wantName: "tool.txt"},
		{name: "no name", path: "/", wantName: "index.html"},
		{name: "checksum mismatch", path: "/dl/tool.txt", checksum: "sha256:" + strings.Repeat("0", 64), err: "checksum mismatch"},
		{name: "404", path: "/missing", err: "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			it, got, err := Download(context.Background(), tmp, srv.URL+tc.path, tc.checksum)
			left, _ := os.ReadDir(tmp)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if len(left) != 0 {
					t.Errorf("%d files left in tmp after a failed download", len(left))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+64 {
				t.Errorf("digest %q", got)
			}
			if _, _, err := Download(context.Background(), tmp, srv.URL+tc.path, got); err != nil {
				t.Errorf("the digest it reported does not verify: %v", err)
			}
			data, err := os.ReadFile(it.Host())
			if err != nil || string(data) != body {
				t.Fatalf("content %q, %v", data, err)
			}
			if filepath.Dir(it.Host()) != tmp {
				t.Errorf("downloaded to %s, not into tmp", it.Host())
			}
			if it.name != tc.wantName || !it.IsRemote() || !it.ModTime().Equal(modified) || it.fi.Mode().Perm() != 0o600 {
				t.Errorf("item name %q remote %v mtime %v mode %v, want %q true %v 0600", it.name, it.IsRemote(), it.ModTime(), it.fi.Mode().Perm(), tc.wantName, modified)
			}
		})
	}
}

// TestResolveChown: --chown resolves names against the destination's
// /etc/passwd and /etc/group; a numeric user alone is also its group; a
// named one takes its primary group; unknown names are errors naming --chown.
func TestResolveChown(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nappgrp:x:1001:\nstaff:x:50:app\n",
	})
	for _, tc := range []struct {
		chown string
		want  Owner
		err   bool
	}{
		{chown: "", want: Owner{}},
		{chown: "app", want: Owner{set: true, uid: 1000, gid: 1001}},
		{chown: "1234", want: Owner{set: true, uid: 1234, gid: 1234}},
		{chown: "app:staff", want: Owner{set: true, uid: 1000, gid: 50}},
		{chown: "1000:50", want: Owner{set: true, uid: 1000, gid: 50}},
		{chown: "nobody", err: true},
		{chown: "app:nogroup", err: true},
	} {
		t.Run(tc.chown, func(t *testing.T) {
			got, err := ResolveChown(root, tc.chown)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "--chown") {
					t.Fatalf("err = %v, want an error naming --chown", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestPlanDirect: a COPY is planned straight into a layer only when the
// layer cannot depend on what it replaces; the destination is resolved
// through the image's symlinks without leaving the image.
func TestPlanDirect(t *testing.T) {
	outer := t.TempDir()
	view := filepath.Join(outer, "view")
	writeTree(t, view, map[string]string{"etc/conf": "c", "file": "f", "over/a.txt/inner": "i"})
	if err := os.Mkdir(filepath.Join(outer, "host"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../host", filepath.Join(view, "escape")); err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	writeTree(t, ctxDir, map[string]string{"a.txt": "a", "dir/x": "x"})
	m, _ := NewMatcher(false, nil)
	c := openTestContext(t, ctxDir)
	items := func(srcs ...string) []Item {
		its, err := m.Match(ctxDir, srcs, c)
		if err != nil {
			t.Fatal(err)
		}
		return its
	}
	for _, tc := range []struct {
		name      string
		items     []Item
		dest      string
		destIsDir bool
		ok        bool
		dests     []string // the dest of each source step
	}{
		{name: "file into a new dir", items: items("a.txt"), dest: "/new/", destIsDir: true, ok: true, dests: []string{"new/a.txt"}},
		{name: "file into an existing dir without a slash", items: items("a.txt"), dest: "/etc", ok: true, dests: []string{"etc/a.txt"}},
		{name: "through an escaping symlink", items: items("a.txt"), dest: "/escape/", destIsDir: true, ok: true, dests: []string{"host/a.txt"}},
		{name: "dir over a file", items: items("dir"), dest: "/file", ok: false},
		{name: "file over a dir", items: items("a.txt"), dest: "/over/", destIsDir: true, ok: false},
		{name: "heredoc", items: []Item{Heredoc("h", "data")}, dest: "/h", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, err := PlanDirect(view, tc.items, tc.dest, tc.destIsDir, Owner{}, 0, false, c)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var dests []string
			for _, s := range p.steps {
				if s.mkdir == nil {
					dests = append(dests, s.dest)
				}
			}
			if diff := cmp.Diff(tc.dests, dests); diff != "" {
				t.Errorf("planned (-want +got):\n%s", diff)
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(outer, "host")); len(entries) != 0 {
		t.Error("planning wrote outside the view")
	}
}

// TestCheckChecksumRules: ADD --checksum wants exactly one remote source and
// a well-formed digest.
func TestCheckChecksumRules(t *testing.T) {
	good := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name     string
		paths    []string
		checksum string
		err      string
	}{
		{name: "none", paths: []string{"a", "b"}},
		{name: "url", paths: []string{"https://h/f"}, checksum: good},
		{name: "two sources", paths: []string{"https://h/f", "https://h/g"}, checksum: good, err: "multiple sources"},
		{name: "bad digest", paths: []string{"https://h/f"}, checksum: "sha256:zz", err: "--checksum=sha256:zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckChecksum(sourcesOf(tc.paths...), tc.checksum, nil)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func sourcesOf(paths ...string) instructions.SourcesAndDest {
	return instructions.SourcesAndDest{SourcePaths: paths, DestPath: "/x/"}
}

// TestHashLargeTree: a walk of several batches and chunks, hashed while it
// goes on, gives the key of the same walk examined one entry at a time, and
// sees an edit anywhere in it, including one that keeps size and mtime.
func TestHashLargeTree(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	n := refChunk*2 + refBatch/2 + 3
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("tree/d%02d/f%04d", i%37, i)] = fmt.Sprint("content ", i)
	}
	writeTree(t, dir, files)
	if err := os.Symlink("../d00/f0000", filepath.Join(dir, "tree/d01/link")); err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	cache := &memCache{}
	key := func() string {
		t.Helper()
		c, err := OpenContext(cache, dir, filepath.Join(dir, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		_, k, err := m.InContext(c, []string{"tree"})
		if err != nil {
			t.Fatal(err)
		}
		c.Save()
		return k
	}
	first := key()
	// The same walk, examined in order on this goroutine.
	c := openTestContext(t, dir)
	items, err := m.Match(dir, []string{"tree"}, c)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, it := range items {
		fmt.Fprintf(h, "item %s %v\n", it.rel, it.fi.IsDir())
	}
	for _, it := range items {
		var refs refList
		if err := walkEntries(it, c, func(rel, host string, d fs.DirEntry) error {
			refs.add(fileRef{rel: rel, host: host, d: d})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if refs.n != n+37+2 { // files, their directories, the link and tree itself
			t.Fatalf("walked %d entries, want %d", refs.n, n+37+2)
		}
		for i := 0; i < refs.n; i++ {
			c.examine(refs.at(i), it)
		}
		var buf bytes.Buffer
		for i := 0; i < refs.n; i++ {
			r := refs.at(i)
			if r.err != nil {
				t.Fatal(r.err)
			}
			buf.Reset()
			fmt.Fprintf(&buf, "%s\x00%o\x00", r.rel, uint32(r.mode.Type())|uint32(r.mode.Perm()))
			if r.mode.IsRegular() {
				fmt.Fprintf(&buf, "%d\x00%x", r.size, r.digest)
			} else if r.mode&fs.ModeSymlink != 0 {
				buf.WriteString(r.link)
			}
			buf.WriteByte('\n')
			h.Write(buf.Bytes())
		}
	}
	if seq := hex.EncodeToString(h.Sum(nil)); seq != first {
		t.Errorf("key hashed while walking %s, in order %s", first, seq)
	}
	if again := key(); again != first {
		t.Errorf("unchanged tree, key from the stat cache %s, want %s", again, first)
	}
	// Same size and mtime, new content, deep in the last chunk.
	p := filepath.Join(dir, fmt.Sprintf("tree/d%02d/f%04d", (n-3)%37, n-3))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // ctime moves on at a coarse tick
	edited := bytes.Clone(old)
	edited[0] ^= 0x20
	if err := os.WriteFile(p, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := key(); got == first {
		t.Error("an edit keeping size and mtime kept the key")
	}
}

// TestFileDigestSwapped: a context file replaced after its lstat, by a
// symlink to a file outside the context or by another file, is not read:
// the digest never comes from what the context does not hold.
func TestFileDigestSwapped(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		swap func(p string) error
	}{
		{"symlink out", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink(outside, p)
		}},
		{"another file", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, []byte("other"), 0o644)
		}},
		{"fifo", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return syscall.Mkfifo(p, 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"f": "context file"})
			p := filepath.Join(dir, "f")
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			// Keep the old inode alive so the new file cannot reuse its number.
			keep, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer keep.Close()
			if err := tc.swap(p); err != nil {
				t.Fatal(err)
			}
			c := openTestContext(t, dir)
			if d, err := c.fileDigest(p, &st); err == nil {
				t.Errorf("read the replacement: digest %x", d)
			}
		})
	}
}

// TestIgnoreFileHostile: a .dockerignore (or Dockerfile.dockerignore) that is a
// FIFO or a directory is refused at once, naming it; one that is a symlink out of
// the context is resolved inside it (the host file's patterns do not apply); a
// plain one applies.
func TestIgnoreFileHostile(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "patterns"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, dir string) (*Context, error) {
		t.Helper()
		done := make(chan struct{})
		var c *Context
		var err error
		go func() { defer close(done); c, err = OpenContext(&memCache{}, dir, filepath.Join(dir, "Dockerfile")) }()
		select {
		case <-done:
			return c, err
		case <-time.After(10 * time.Second):
			t.Fatal("still reading the ignore file after 10 s")
		}
		return nil, nil
	}
	for _, name := range []string{".dockerignore", "Dockerfile.dockerignore"} {
		for _, kind := range []string{"fifo", "dir"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				p := filepath.Join(dir, name)
				var err error
				if kind == "fifo" {
					err = unix.Mkfifo(p, 0o644)
				} else {
					err = os.Mkdir(p, 0o755)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := open(t, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want %s refused by name", err, p)
				}
			})
		}
	}
	t.Run("symlink out", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink(filepath.Join(outside, "patterns"), filepath.Join(dir, ".dockerignore")); err != nil {
			t.Fatal(err)
		}
		c, err := open(t, dir)
		if err != nil {
			t.Fatal(err)
		}
		if c.excluded("secret") {
			t.Error("the patterns of a host file outside the context apply")
		}
	})
	t.Run("plain", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := open(t, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !c.excluded("secret") || c.excluded("other") {
			t.Error("the context's own .dockerignore does not apply as written")
		}
	})
}
