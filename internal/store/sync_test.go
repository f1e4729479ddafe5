package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// syncEvent is one sync seen by syncHook, with what the watched directory held then.
type syncEvent struct {
	kind, path string
	names      map[string]bool
}

// watchSyncs records every sync during fn, with the entries of dir at that moment,
// and returns them and the entries dir gained.
func watchSyncs(t *testing.T, dir string, fn func()) ([]syncEvent, []string) {
	t.Helper()
	list := func() map[string]bool {
		m := map[string]bool{}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			m[e.Name()] = true
		}
		return m
	}
	before := list()
	var evs []syncEvent
	syncHook = func(kind, path string) { evs = append(evs, syncEvent{kind, path, list()}) }
	defer func() { syncHook = nil }()
	fn()
	var added []string
	for n := range list() {
		if !before[n] {
			added = append(added, n)
		}
	}
	return evs, added
}

// TestPublishedAfterSync checks every path that makes content visible: the content
// is synced (the file, or the whole filesystem for a directory tree) while its name
// is not there yet, and the directory holding the name is synced once it is. A
// power loss then leaves the old state or the new one, never a name without its data.
func TestPublishedAfterSync(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	layerTar := tarOf(t, map[string]string{"etc/hostname": "box\n"}, "etc/hostname")
	for _, tc := range []struct {
		name    string
		dir     func(s *Store) string // where the new name appears
		content string                // the sync kind that must precede it: file or fs
		op      func(t *testing.T, s *Store)
		setup   func(t *testing.T, s *Store)
	}{
		{"WriteBlob", func(s *Store) string { return s.path("blobs", "sha256") }, "file", func(t *testing.T, s *Store) {
			if _, _, err := s.WriteBlob([]byte(`{"a":1}`)); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"WriteBlobFrom", func(s *Store) string { return s.path("blobs", "sha256") }, "file", func(t *testing.T, s *Store) {
			if _, _, err := s.WriteBlobFrom(bytes.NewReader([]byte("streamed")), v1.Hash{}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"LayerWriter.Commit", func(s *Store) string { return s.path("blobs", "sha256") }, "file", func(t *testing.T, s *Store) {
			writeLayer(t, s, Gzip, layerTar)
		}, nil},
		{"PutCache in a new shard", func(s *Store) string { return s.path("cache") }, "", func(t *testing.T, s *Store) {
			if err := s.PutCache("abcd", []byte("v")); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"PutCache value", func(s *Store) string { return s.path("cache", "ab") }, "file", func(t *testing.T, s *Store) {
			if err := s.PutCache("abce", []byte("v")); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store) {
			if err := s.PutCache("abff", []byte("v")); err != nil { // the shard exists already
				t.Fatal(err)
			}
		}},
		{"Tag rewrites index.json", func(s *Store) string { return s.root }, "file", func(t *testing.T, s *Store) {
			if err := s.Tag("example.com/x:1", sha([]byte(manifestJSON))); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store) {
			if _, _, err := s.WriteBlob([]byte(manifestJSON)); err != nil {
				t.Fatal(err)
			}
			os.Remove(s.path("index.json")) // so that the rewritten index shows as a new name
		}},
		{"LayerDir unpack", func(s *Store) string { return s.path("layers") }, "tree", func(t *testing.T, s *Store) {
			l, err := s.Layer(writeLayer(t, s, Gzip, layerTar))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.LayerDir(l); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"IngestLayer blob", func(s *Store) string { return s.path("blobs", "sha256") }, "fs", func(t *testing.T, s *Store) {
			if _, err := s.IngestLayer(context.Background(), bytes.NewReader(layerTar), IngestSpec{}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"IngestLayer dir", func(s *Store) string { return s.path("layers") }, "fs", func(t *testing.T, s *Store) {
			if _, err := s.IngestLayer(context.Background(), bytes.NewReader(layerTar), IngestSpec{}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		// A step's overlay is volatile (it never syncs the upper directory): this
		// sync is the only one the committed tree gets.
		{"CommitTree", func(s *Store) string { return s.path("snapshots") }, "tree", func(t *testing.T, s *Store) {
			d, err := s.TempDir("upper-")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CommitTree(d, nil); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"AdoptLayerDir", func(s *Store) string { return s.path("layers") }, "tree", func(t *testing.T, s *Store) {
			d, err := s.TempDir("upper-")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AdoptLayerDir(sha([]byte("adopted")), d); err != nil {
				t.Fatal(err)
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			dir := tc.dir(s)
			evs, added := watchSyncs(t, dir, func() { tc.op(t, s) })
			if len(added) == 0 {
				t.Fatalf("nothing new appeared in %s", dir)
			}
			for _, name := range added {
				contentSynced, dirSynced := tc.content == "", false
				for _, e := range evs {
					switch {
					case !e.names[name] && e.kind == tc.content && (e.kind == "fs" || strings.HasPrefix(e.path, s.path("tmp")+"/")):
						contentSynced = true
					case e.names[name] && e.kind == "dir" && e.path == dir && contentSynced:
						dirSynced = true
					}
				}
				if !contentSynced {
					t.Errorf("%s appeared in %s without its content synced first (%s sync); syncs: %v", name, dir, tc.content, evs)
				}
				if !dirSynced {
					t.Errorf("%s appeared in %s, and the directory was not synced after; syncs: %v", name, dir, evs)
				}
			}
		})
	}
}

const manifestJSON = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}`

// TestSyncTree checks what a committed tree gets synced with: a small one has each
// regular file and directory fsynced (nothing else is opened: not the FIFO, not
// through the symlink), a big one the whole filesystem.
func TestSyncTree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files int
		want  []string // synced one by one ("file" syncs), relative to the tree
		fs    bool     // synced with the whole filesystem
	}{
		{"small", 2, []string{"f0", "f1", "sub/inner", "sub", "."}, false},
		{"big", smallTree, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			d, err := s.TempDir("upper-")
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.files; i++ {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "sub", "inner"), []byte("y"), 0o644); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Join(t.TempDir(), "host-file")
			if err := os.WriteFile(outside, []byte("host"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(d, "link")); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(filepath.Join(d, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			var got []string
			sawFS, sawTree := false, false
			syncHook = func(kind, path string) {
				switch kind {
				case "file":
					rel, _ := filepath.Rel(d, path)
					got = append(got, rel)
				case "fs":
					sawFS = true
				case "tree":
					sawTree = path == d
				}
			}
			defer func() { syncHook = nil }()
			if err := s.syncTree(d); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries fsynced (-want +got):\n%s", diff)
			}
			if sawFS != tc.fs || !sawTree {
				t.Errorf("filesystem synced = %v (want %v), tree reported = %v", sawFS, tc.fs, sawTree)
			}
		})
	}
}

// TestFsyncBeneath attacks the open of a hostile tree's entries: a symlink (to a
// host file, or to a directory of the tree), a path out of the tree and a FIFO
// (whose open would block) are refused; a file and a directory are synced.
func TestFsyncBeneath(t *testing.T) {
	d := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-file")
	for _, err := range []error{
		os.WriteFile(outside, []byte("host"), 0o644),
		os.WriteFile(filepath.Join(d, "file"), []byte("x"), 0o644),
		os.Mkdir(filepath.Join(d, "dir"), 0o755),
		os.Symlink(outside, filepath.Join(d, "link")),
		os.Symlink("dir", filepath.Join(d, "dirlink")),
		unix.Mkfifo(filepath.Join(d, "fifo"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"file", true},
		{"dir", true},
		{".", true},
		{"link", false},
		{"dirlink/x", false},
		{"../" + filepath.Base(d) + "/file", false},
		{outside, false},
		{"fifo", false},
	} {
		err := fsyncBeneath(root, tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("fsyncBeneath(%q) = %v, want ok %v", tc.rel, err, tc.ok)
		}
	}
}

func TestParseDirty(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int64
		bad      bool
	}{
		{"both", "MemTotal: 100 kB\nDirty:        88 kB\nWriteback:      12 kB\nWritebackTmp: 5 kB\n", 100 << 10, false},
		{"zero", "Dirty: 0 kB\nWriteback: 0 kB\n", 0, false},
		{"no writeback", "Dirty: 8 kB\n", 0, true},
		{"no unit", "Dirty: 8\nWriteback: 0 kB\n", 0, true},
		{"negative", "Dirty: -8 kB\nWriteback: 0 kB\n", 0, true},
		{"empty", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDirty(strings.NewReader(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatalf("parseDirty = %d, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseDirty = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if _, err := dirtyBytes(); err != nil {
		t.Fatalf("this machine's /proc/meminfo: %v", err)
	}
}

// TestWriteBehind checks that a running step's writes are flushed while it runs,
// whenever enough is dirty, and that nothing is flushed once it is stopped.
func TestWriteBehind(t *testing.T) {
	s := openStore(t)
	every, dirty := writeBehindEvery, writeBehindDirty
	defer func() { writeBehindEvery, writeBehindDirty = every, dirty }()
	writeBehindEvery = 5 * time.Millisecond

	var mu sync.Mutex
	flushes := 0
	syncHook = func(kind, path string) {
		if kind == "fs" && path == s.root {
			mu.Lock()
			flushes++
			mu.Unlock()
		}
	}
	defer func() { syncHook = nil }()
	count := func() int { mu.Lock(); defer mu.Unlock(); return flushes }

	// More dirty than any machine has: never flushed.
	writeBehindDirty = 1 << 62
	stop := s.WriteBehind()
	time.Sleep(50 * time.Millisecond)
	stop()
	if n := count(); n != 0 {
		t.Fatalf("%d flushes with too little dirty", n)
	}

	// Any dirty amount: flushed while running, and never after stop.
	writeBehindDirty = 0
	stop = s.WriteBehind()
	deadline := time.Now().Add(10 * time.Second)
	for count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop() // safe twice
	n := count()
	if n == 0 {
		t.Fatal("nothing flushed while running")
	}
	time.Sleep(50 * time.Millisecond)
	if m := count(); m != n {
		t.Fatalf("%d flushes after stop", m-n)
	}
}
