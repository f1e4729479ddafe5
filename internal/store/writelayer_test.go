package store

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// TestWriteLayer: the layer holds what fill wrote, with times clamped to the
// epoch; a fill that fails leaves no blob and no temporary file.
func TestWriteLayer(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0).UTC()
	later := epoch.Add(48 * time.Hour)
	earlier := epoch.Add(-48 * time.Hour)
	for _, tc := range []struct {
		name    string
		epoch   *time.Time
		mtime   time.Time
		want    time.Time
		failErr error
	}{
		{name: "no epoch", mtime: later, want: later},
		{name: "later than the epoch is clamped", epoch: &epoch, mtime: later, want: epoch},
		{name: "earlier than the epoch stays", epoch: &epoch, mtime: earlier, want: earlier},
		{name: "fill fails", failErr: errors.New("boom")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			info, err := s.WriteLayer(Zstd, tc.epoch, func(tw *layer.Writer) error {
				if err := tw.Mkdir("dir", 0o755, layer.Owner{}, tc.mtime); err != nil {
					return err
				}
				return tc.failErr
			})
			if tc.failErr != nil {
				if !errors.Is(err, tc.failErr) {
					t.Fatalf("error %v, want %v", err, tc.failErr)
				}
				for _, d := range []string{"tmp", filepath.Join("blobs", "sha256")} {
					ents, _ := os.ReadDir(filepath.Join(s.Root(), d))
					if len(ents) != 0 {
						t.Errorf("%s holds %d entries after a failed write", d, len(ents))
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l, err := s.Layer(*info)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			hdr, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Name != "dir/" || !hdr.ModTime.Equal(tc.want) {
				t.Errorf("entry %q at %v, want dir/ at %v", hdr.Name, hdr.ModTime, tc.want)
			}
			if _, err := tr.Next(); err != io.EOF {
				t.Errorf("after the one entry: %v, want EOF", err)
			}
		})
	}
}

// TestLayerTrees: a stored layer is named by its diffID and opens as its tar.
func TestLayerTrees(t *testing.T) {
	s := openStore(t)
	info, err := s.WriteLayer(Gzip, nil, func(tw *layer.Writer) error {
		return tw.Mkdir("only", 0o700, layer.Owner{}, time.Unix(0, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Layer(*info)
	if err != nil {
		t.Fatal(err)
	}
	trees, err := s.LayerTrees([]v1.Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	if len(trees) != 1 || trees[0].ID != info.DiffID.String() {
		t.Fatalf("trees %+v, want one named %s", trees, info.DiffID)
	}
	rc, err := trees[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdr, err := tar.NewReader(rc).Next()
	if err != nil || hdr.Name != "only/" {
		t.Errorf("first entry %v (%v), want only/", hdr, err)
	}
}

// TestCommitTree: a tree with an overlay whiteout name is refused and stays
// where it was; otherwise it becomes a snapshot with its times clamped to the
// epoch.
func TestCommitTree(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0).UTC()
	later := epoch.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		file    string
		wantErr bool
	}{
		{name: "clamped", file: "f"},
		{name: "whiteout name refused", file: ".wh.f", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			dir, err := s.TempDir("tree-")
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.file)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
			id, err := s.CommitTree(dir, &epoch)
			if tc.wantErr {
				if err == nil {
					t.Fatal("committed a tree with a whiteout name")
				}
				if _, err := os.Stat(p); err != nil {
					t.Errorf("the refused tree moved: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sd, ok := s.SnapshotDir(id)
			if !ok {
				t.Fatal("no snapshot after the commit")
			}
			fi, err := os.Lstat(filepath.Join(sd, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(epoch) {
				t.Errorf("mtime %v, want the epoch %v", fi.ModTime(), epoch)
			}
		})
	}
}
