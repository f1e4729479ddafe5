package store

import (
	"context"
	"fmt"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobsOf lists the manifest, config and layer digests of a stored image.
func blobsOf(t *testing.T, s *Store, h v1.Hash) []v1.Hash {
	t.Helper()
	img, err := s.Image(h.String())
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{h, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestGC(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	s := openStore(t)
	write := func() (v1.Hash, string) {
		h, err := s.WriteImage(randomImage(t, true))
		if err != nil {
			t.Fatal(err)
		}
		img, _ := s.Image(h.String())
		ls, _ := img.Layers()
		dir, err := s.LayerDir(ls[0])
		if err != nil {
			t.Fatal(err)
		}
		return h, dir
	}
	named, namedDir := write()
	cached, cachedDir := write()
	rooted, rootedDir := write()
	dropped, droppedDir := write()
	if err := s.Tag("named:latest", named); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCache("00ff", []byte(fmt.Sprintf(`{"image":%q}`, cached))); err != nil {
		t.Fatal(err)
	}
	// A loose layer only the cache references, with its unpacked dir.
	loose := writeLayer(t, s, Gzip, tarOf(t, map[string]string{"f": "loose"}, "f"))
	ll, _ := s.Layer(loose)
	looseDir, err := s.LayerDir(ll)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCache("0100", []byte(fmt.Sprintf(`{"layer":{"digest":%q,"diffID":%q}}`, loose.Digest, loose.DiffID))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TempDir("leftover-"); err != nil {
		t.Fatal(err)
	}

	u, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Images != 1 || u.CacheEntries != 2 || u.LayerDirs != 5 || u.Blobs != 4*5+1 {
		t.Errorf("DiskUsage = %+v", u)
	}
	if u.ReclaimableBytes == 0 {
		t.Error("DiskUsage reports nothing reclaimable")
	}

	// Another Store (another build) keeps what it uses, and its temporary files,
	// for as long as it is open.
	other, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Image(dropped.String()); err != nil {
		t.Fatal(err)
	}
	busy, err := other.TempDir("busy-")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.GC(GCOptions{Roots: func(keep func(v1.Hash)) error { keep(rooted); return nil }})
	if err != nil {
		t.Fatalf("GC with another Store open: %v", err)
	}
	if st.Blobs != 0 || st.LayerDirs != 0 {
		t.Errorf("GC removed %+v that another open Store uses", st)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("GC removed another Store's temp dir: %v", err)
	}
	other.Close()

	dry, err := s.GC(GCOptions{DryRun: true, Roots: func(keep func(v1.Hash)) error { keep(rooted); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.GC(GCOptions{Roots: func(keep func(v1.Hash)) error { keep(rooted); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if dry != st {
		t.Errorf("dry run %+v differs from GC %+v", dry, st)
	}
	if st.Blobs != 5 || st.LayerDirs != 1 {
		t.Errorf("GC removed %+v, want the 5 blobs and 1 dir of one image", st)
	}
	for _, h := range append(append(blobsOf(t, s, named), blobsOf(t, s, cached)...), append(blobsOf(t, s, rooted), loose.Digest)...) {
		if !s.HasBlob(h) {
			t.Errorf("GC removed reachable blob %s", h)
		}
	}
	for _, d := range []string{namedDir, cachedDir, rootedDir, looseDir} {
		if _, ok := s.LayerDirPath(v1.Hash{Algorithm: "sha256", Hex: d[len(d)-64:]}); !ok {
			t.Errorf("GC removed reachable layer dir %s", d)
		}
	}
	if s.HasBlob(dropped) {
		t.Error("GC kept the unreachable manifest")
	}
	if _, ok := s.LayerDirPath(v1.Hash{Algorithm: "sha256", Hex: droppedDir[len(droppedDir)-64:]}); ok {
		t.Error("GC kept the unreachable layer dir")
	}
	if n := dirNames(t, s.path("tmp")); len(n) != 0 {
		t.Errorf("tmp/ after GC: %v", n)
	}

	// Clearing the cache makes what only it kept collectable.
	if err := s.ClearCache(); err != nil {
		t.Fatal(err)
	}
	st, err = s.GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 5+5+1 || st.LayerDirs != 3 {
		t.Errorf("second GC removed %+v", st)
	}
	if _, err := s.Image("named:latest"); err != nil {
		t.Errorf("named image lost: %v", err)
	}
}

// A GC that finds the store busy must go on looking busy: when the other Store
// closes, a third Open must not take the store for unused and remove the first
// one's temporary files.
func TestGCNotAloneKeepsStoreBusy(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tmp, err := b.TempDir("busy-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GC(GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("GC beside another Store removed its own temp dir: %v", err)
	}
	a.Close()
	c, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("an Open after GC found the store unused and removed a live temp dir: %v", err)
	}
	if _, err := Fsck(context.Background(), root, FsckOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("fsck --repair removed a live temp dir: %v", err)
	}
}
