package store

import (
	"os"
	"testing"
	"time"
)

// TestStepRecords: a step's record is used only while what it names is in the
// store in a usable form, and a snapshot layer keeps its blob in the record.
func TestStepRecords(t *testing.T) {
	s := openStore(t)
	if _, ok := s.Step("0123abcd"); ok {
		t.Fatal("a missing record was found")
	}
	if err := s.PutCache("0123abce", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Step("0123abce"); ok {
		t.Error("a record that does not decode was used")
	}

	id := commitTree(t, s, "hello")
	rec := StepRecord{Snapshot: &id, Created: time.Unix(1, 0).UTC()}
	if err := s.PutStep("0123abcf", rec); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Step("0123abcf")
	if !ok || got.Snapshot == nil || *got.Snapshot != id || got.Layer != nil {
		t.Fatalf("read back %+v, %v", got, ok)
	}
	if !s.Usable(got, Gzip) {
		t.Error("a record of a committed snapshot is not usable")
	}
	if s.Usable(&StepRecord{}, Gzip) != true {
		t.Error("a step that changed nothing is not usable")
	}

	// The blob made on demand is kept in the record, in the compression asked for.
	l := s.SnapshotLayers(Gzip, nil).StepLayer("0123abcf", rec)
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	got, _ = s.Step("0123abcf")
	if got.Layer == nil || got.Layer.Digest != info.Digest {
		t.Fatalf("record after the blob was made: %+v, want layer %s", got, info.Digest)
	}
	// A directly written blob is usable only in its own compression.
	direct := &StepRecord{Layer: got.Layer}
	if !s.Usable(direct, Gzip) || s.Usable(direct, Zstd) {
		t.Errorf("direct gzip blob: usable with gzip %v, with zstd %v", s.Usable(direct, Gzip), s.Usable(direct, Zstd))
	}
	// Without its tree and its blob, a snapshot record is not usable.
	snap, _ := s.SnapshotDir(id)
	promoted, _ := s.LayerDirPath(info.DiffID)
	for _, dir := range []string{snap, promoted} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(s.BlobPath(info.Digest)); err != nil {
		t.Fatal(err)
	}
	if s.Usable(got, Gzip) {
		t.Error("a record whose snapshot, layer dir and blob are gone is usable")
	}
}
