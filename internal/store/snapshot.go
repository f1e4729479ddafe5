package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// Snapshots are committed layer directories that have no blob yet.
//
// A build step's result is first a directory (an overlay upper dir, in overlay
// lower format) and a cache key. Its tar, diffID and compressed blob are made only
// when something needs them: the image that ships, an output, a cache export.
// Until then the directory lives at ROOT/snapshots/ID, where ID is a name in
// sha256 form (the hash of random bytes: it names the commit, not the content), so
// that cache values, leases and GC treat it as they treat digests.
//
// When the blob is made (PromoteSnapshot), the directory is renamed to
// ROOT/layers/DIFFID, the one home of unpacked layers with a known diffID. An
// overlay mounted over the old name keeps working (the kernel holds the directory,
// not its path); a process that resolves the old name after the rename finds it
// gone and looks the layer up by diffID instead.

// CommitSnapshot moves dir (on the store's filesystem, in overlay lower format)
// into the store as a new snapshot and returns its ID. The tree is on disk before
// its name appears (syncTree: the overlay that made it never synced it).
func (s *Store) CommitSnapshot(dir string) (v1.Hash, error) {
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return v1.Hash{}, fmt.Errorf("committing snapshot: %w", err)
	}
	sum := sha256.Sum256(nonce[:])
	id := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := s.hold(id); err != nil {
		return v1.Hash{}, fmt.Errorf("committing snapshot: %w", err)
	}
	if err := s.syncTree(dir); err != nil {
		return v1.Hash{}, fmt.Errorf("committing snapshot: %w", err)
	}
	if err := os.Rename(dir, s.path("snapshots", id.Hex)); err != nil {
		return v1.Hash{}, fmt.Errorf("committing snapshot: %w", err)
	}
	if err := SyncDir(s.path("snapshots")); err != nil {
		return v1.Hash{}, fmt.Errorf("committing snapshot: %w", err)
	}
	return id, nil
}

// CommitTree commits dir, a tree a build step made, as a new snapshot: its
// names are checked first (no .wh. name, see layer.CheckNames) and, with an
// epoch, its later times are clamped to it, so that the tree matches its
// blob whenever that is made.
func (s *Store) CommitTree(dir string, epoch *time.Time) (v1.Hash, error) {
	if err := layer.CheckNames(dir); err != nil {
		return v1.Hash{}, err
	}
	if epoch != nil {
		if err := layer.ClampTimes(dir, *epoch); err != nil {
			return v1.Hash{}, err
		}
	}
	return s.CommitSnapshot(dir)
}

// SnapshotDir is where snapshot id lives, and whether it is there (it is not
// once promoted, or when GC removed it).
func (s *Store) SnapshotDir(id v1.Hash) (string, bool) {
	if !validHash(id) {
		return "", false
	}
	_ = s.hold(id) // a closed store only reads
	p := s.path("snapshots", id.Hex)
	_, err := os.Stat(p)
	return p, err == nil
}

// PromoteSnapshot makes snapshot id the unpacked directory of diffID, once its
// blob is stored. When that directory exists already (the same content committed
// twice), the snapshot stays where it is until GC finds it unreferenced: another
// build may have it mounted.
func (s *Store) PromoteSnapshot(id, diffID v1.Hash) error {
	if !validHash(id) || !validHash(diffID) {
		return fmt.Errorf("promoting snapshot %q to layer %q: bad name", id, diffID)
	}
	if err := s.hold(diffID); err != nil {
		return fmt.Errorf("promoting snapshot %s: %w", id, err)
	}
	dst := s.path("layers", diffID.Hex)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.Rename(s.path("snapshots", id.Hex), dst); err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrExist) || isNotEmpty(err) {
			return nil // promoted meanwhile, by this process or another
		}
		return fmt.Errorf("promoting snapshot %s to layer %s: %w", id, diffID, err)
	}
	if err := SyncDir(s.path("layers")); err != nil {
		return fmt.Errorf("promoting snapshot %s: %w", id, err)
	}
	return SyncDir(s.path("snapshots"))
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }
