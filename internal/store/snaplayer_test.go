package store

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fakeRecord is a caller's record of a snapshot: the blobs it holds and how
// many times one was kept.
type fakeRecord struct {
	mu    sync.Mutex
	blobs []LayerInfo
	kept  int
	fail  error
}

func (r *fakeRecord) Blobs() []LayerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LayerInfo(nil), r.blobs...)
}

func (r *fakeRecord) Keep(info LayerInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.kept++
	r.blobs = append(r.blobs, info)
	return nil
}

func (r *fakeRecord) String() string { return "the fake record" }

// commitTree commits a snapshot holding one file.
func commitTree(t *testing.T, s *Store, content string) v1.Hash {
	t.Helper()
	dir, err := s.TempDir("snap-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := s.CommitSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func blobCount(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSnapshotLayerOnDemand: a snapshot layer makes no blob until one of its
// v1.Layer methods is read, then exactly one however many layers name the
// snapshot and however many goroutines ask, keeps it in the record, and
// promotes the tree to the layer directory of its diffID.
func TestSnapshotLayerOnDemand(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := commitTree(t, s, "hello")
	rec := &fakeRecord{}
	sl := s.SnapshotLayers(Gzip, nil)
	a, b := sl.Layer(id, rec), sl.Layer(id, rec)
	before := blobCount(t, s)

	// The tree is readable without a blob.
	rc, err := a.Tree()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	rc.Close()
	if strings.Join(names, ",") != "f" {
		t.Errorf("tree holds %v, want [f]", names)
	}
	if a.Made() || blobCount(t, s) != before || rec.kept != 0 {
		t.Fatalf("reading the tree made a blob (made %v, %d blobs, kept %d)", a.Made(), blobCount(t, s)-before, rec.kept)
	}

	var wg sync.WaitGroup
	digests := make([]v1.Hash, 8)
	for i := range digests {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			d, err := l.Digest()
			if err != nil {
				t.Error(err)
			}
			digests[i] = d
		})
	}
	wg.Wait()
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("digests differ: %v", digests)
		}
	}
	if !a.Made() || !b.Made() {
		t.Error("Made is false after the blob was made")
	}
	if rec.kept != 1 || blobCount(t, s) != before+1 {
		t.Errorf("kept %d blobs in the record and wrote %d, want 1 and 1", rec.kept, blobCount(t, s)-before)
	}
	if _, ok := s.SnapshotDir(id); ok {
		t.Error("the snapshot was not promoted")
	}
	diffID, err := a.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := a.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := s.LayerDirPath(diffID); dir != want {
		t.Errorf("Dir = %s after promotion, want %s", dir, want)
	}

	// Another build (new SnapshotLayers) finds the blob in the record and makes none.
	again := s.SnapshotLayers(Gzip, nil).Layer(id, rec)
	if d, err := again.Digest(); err != nil || d != digests[0] {
		t.Errorf("rebuild: digest %v, %v; want %v", d, err, digests[0])
	}
	if rec.kept != 1 || blobCount(t, s) != before+1 {
		t.Errorf("rebuild made a blob again (kept %d)", rec.kept)
	}
	if again.Made() != true {
		t.Error("a blob found in the record counts as made")
	}
}

// TestSnapshotLayerErrors: a snapshot that is gone, and a record that cannot
// keep the blob, fail with errors that say so (naming the record).
func TestSnapshotLayerErrors(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gone := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	_, err = s.SnapshotLayers(Gzip, nil).Layer(gone, &fakeRecord{}).Digest()
	if err == nil || !strings.Contains(err.Error(), "missing from the store") || !strings.Contains(err.Error(), "the fake record") {
		t.Errorf("missing snapshot: %v", err)
	}
	if _, err := s.LowerDirs([]v1.Layer{s.SnapshotLayers(Gzip, nil).Layer(gone, &fakeRecord{})}); err == nil {
		t.Error("LowerDirs of a missing snapshot succeeded")
	}

	boom := errors.New("boom")
	l := s.SnapshotLayers(Gzip, nil).Layer(commitTree(t, s, "x"), &fakeRecord{fail: boom})
	if _, err := l.Digest(); !errors.Is(err, boom) {
		t.Errorf("Keep failing: %v, want boom", err)
	}
	if l.Made() {
		t.Error("Made after a failure")
	}
}
