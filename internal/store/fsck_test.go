package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// fsckFixture is a store holding a named image (one layer unpacked from its
// foreign-made blob), a layer slimbuild wrote from a directory and adopted, and a
// build cache record pointing at that layer. The store is closed.
type fsckFixture struct {
	root    string
	img     v1.Image
	name    string
	own     LayerInfo // the adopted layer, referenced by the cache record
	key     string    // the cache record's key
	foreign v1.Hash   // diffID of the image's unpacked layer
}

func newFsckFixture(t *testing.T) *fsckFixture {
	t.Helper()
	f := &fsckFixture{root: t.TempDir(), img: randomImage(t, true), name: "example.com/fsck:1", key: strings.Repeat("ab", 32)}
	s, err := Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.publish(t, s)

	dir, err := s.TempDir("own-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "greeting"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lw, err := s.NewLayerWriter(Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Write(lw, dir, layer.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.own, err = lw.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdoptLayerDir(f.own.DiffID, dir); err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(map[string]any{"layer": f.own})
	if err := s.PutCache(f.key, rec); err != nil {
		t.Fatal(err)
	}
	ls, _ := f.img.Layers()
	if f.foreign, err = ls[0].DiffID(); err != nil {
		t.Fatal(err)
	}
	return f
}

// publish writes and names the image and unpacks its first layer.
func (f *fsckFixture) publish(t *testing.T, s *Store) {
	t.Helper()
	h, err := s.WriteImage(f.img)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(f.name, h); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(f.name)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LayerDir(ls[0]); err != nil {
		t.Fatal(err)
	}
}

func (f *fsckFixture) manifest(t *testing.T) *v1.Manifest {
	t.Helper()
	m, err := f.img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fsckFixture) blob(h v1.Hash) string {
	return filepath.Join(f.root, "blobs", h.Algorithm, h.Hex)
}

func fsck(t *testing.T, root string, repair bool) *FsckReport {
	t.Helper()
	rep, err := Fsck(context.Background(), root, FsckOptions{Repair: repair})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func kinds(rep *FsckReport) []string {
	seen := map[string]bool{}
	for _, p := range rep.Problems {
		seen[p.Kind] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestFsckCleanStore(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	f := newFsckFixture(t)
	rep := fsck(t, f.root, false)
	if !rep.Clean() || len(rep.Problems) != 0 {
		t.Fatalf("fresh store: %v", rep.Problems)
	}
	if rep.Names != 1 || rep.LayerDirs != 2 || rep.CacheEntries != 1 || rep.Blobs != 6 {
		t.Errorf("checked %d names, %d layer dirs, %d cache records, %d blobs; want 1, 2, 1, 6", rep.Names, rep.LayerDirs, rep.CacheEntries, rep.Blobs)
	}
}

func TestFsckFindsAndRepairs(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, f *fsckFixture)
		want    []string // problem kinds
	}{
		{"truncated layer blob", func(t *testing.T, f *fsckFixture) {
			if err := os.Truncate(f.blob(f.manifest(t).Layers[1].Digest), 10); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemBlob, ProblemName}},
		{"config blob with wrong content", func(t *testing.T, f *fsckFixture) {
			p := f.blob(f.manifest(t).Config.Digest)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemBlob, ProblemName}},
		{"missing layer blob", func(t *testing.T, f *fsckFixture) {
			if err := os.Remove(f.blob(f.manifest(t).Layers[2].Digest)); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemName}},
		{"manifest pointing to a layer never stored", func(t *testing.T, f *fsckFixture) {
			s, err := Open(f.root)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			m := f.manifest(t).DeepCopy()
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: 3, Digest: sha([]byte("absent"))})
			b, _ := json.Marshal(m)
			h, _, err := s.WriteBlob(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Tag("example.com/broken:1", h); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemName}},
		{"corrupted file in a layer slimbuild wrote", func(t *testing.T, f *fsckFixture) {
			p := filepath.Join(f.root, "layers", f.own.DiffID.Hex, "etc", "greeting")
			if err := os.WriteFile(p, []byte("HELLO\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemLayer}},
		{"file planted in a layer unpacked from a foreign blob", func(t *testing.T, f *fsckFixture) {
			p := filepath.Join(f.root, "layers", f.foreign.Hex, "planted")
			if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemLayer}},
		{"stale tmp dir", func(t *testing.T, f *fsckFixture) {
			if err := os.MkdirAll(filepath.Join(f.root, "tmp", "build-123", "step-1", "upper"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemTmp}},
		{"cache record to a missing layer", func(t *testing.T, f *fsckFixture) {
			if err := os.Remove(f.blob(f.own.Digest)); err != nil {
				t.Fatal(err)
			}
		}, []string{ProblemCache}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFsckFixture(t)
			// A first check remembers tree sums of foreign layers; they must not hide damage.
			if first := fsck(t, f.root, false); len(first.Problems) != 0 {
				t.Fatalf("fresh store: %v", first.Problems)
			}
			tc.corrupt(t, f)

			rep := fsck(t, f.root, false)
			if got := kinds(rep); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("fsck found kinds %v, want %v: %v", got, tc.want, rep.Problems)
			}
			if rep.Clean() {
				t.Fatal("report says clean with problems found")
			}
			for _, p := range rep.Problems {
				if p.Repaired {
					t.Errorf("repaired without --repair: %v", p)
				}
			}
			if again := fsck(t, f.root, false); len(again.Problems) != len(rep.Problems) {
				t.Errorf("fsck without repair changed the store: %v, then %v", rep.Problems, again.Problems)
			}

			rep = fsck(t, f.root, true)
			if !rep.Clean() {
				t.Fatalf("not all repaired: %v", rep.Problems)
			}
			if after := fsck(t, f.root, false); len(after.Problems) != 0 {
				t.Fatalf("fsck after repair: %v", after.Problems)
			}

			// The store still works: the image can be stored, named and unpacked
			// again, the adopted layer is re-made from its blob when present.
			s, err := Open(f.root)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			f.publish(t, s)
			img, err := s.Image(f.name)
			if err != nil {
				t.Fatal(err)
			}
			ls, _ := img.Layers()
			if _, err := s.LayerDirs(ls); err != nil {
				t.Fatal(err)
			}
			if s.HasBlob(f.own.Digest) {
				l, _ := s.Layer(f.own)
				if _, err := s.LayerDir(l); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			if after := fsck(t, f.root, false); len(after.Problems) != 0 {
				t.Fatalf("fsck after using the repaired store: %v", after.Problems)
			}
		})
	}
}

// An open store's temporary files are in use: fsck must not report or remove them.
func TestFsckLeavesLiveTempsAlone(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.TempDir("busy-")
	if err != nil {
		t.Fatal(err)
	}
	rep := fsck(t, root, true)
	if !rep.Busy || len(rep.Problems) != 0 {
		t.Errorf("fsck of a busy store: busy %v, problems %v", rep.Busy, rep.Problems)
	}
	if _, err := os.Stat(d); err != nil {
		t.Errorf("fsck removed a live temp dir: %v", err)
	}
}
