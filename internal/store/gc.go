package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// GCOptions tune GC.
type GCOptions struct {
	// Roots, when set, marks extra digests to keep (manifests, blobs or diffIDs), e.g.
	// what the build engine references from outside the cache values.
	Roots func(keep func(v1.Hash)) error
	// DryRun reports what would be removed without removing it.
	DryRun bool
}

// GCStats reports what GC removed (or would remove, with DryRun).
type GCStats struct {
	Blobs     int   // blob files
	LayerDirs int   // unpacked layer directories and snapshots
	Bytes     int64 // apparent size of the removed blobs, layer dirs and temps
}

// Usage summarises the store's disk use (apparent file sizes; hard links counted once).
type Usage struct {
	Images           int   // names in index.json
	Blobs            int   // files under blobs/
	BlobBytes        int64 //
	LayerDirs        int   // unpacked layers under layers/ and snapshots under snapshots/
	LayerDirBytes    int64 //
	CacheEntries     int   // build cache values
	CacheBytes       int64 //
	TempBytes        int64 // under tmp/
	ReclaimableBytes int64 // blobs and layer dirs unreachable from names and cache values
}

// digestsIn calls fn with every "sha256:" and 64 lowercase hex digits in b,
// left to right, matches not overlapping (what regexp `sha256:[0-9a-f]{64}`
// finds, without compiling one at start-up or running it on every read).
func digestsIn(b []byte, fn func(v1.Hash)) {
	const prefix, hexLen = "sha256:", 64
	for {
		i := bytes.Index(b, []byte(prefix))
		if i < 0 {
			return
		}
		b = b[i+len(prefix):]
		if len(b) < hexLen || !isLowerHex(b[:hexLen]) {
			continue
		}
		fn(v1.Hash{Algorithm: "sha256", Hex: string(b[:hexLen])})
		b = b[hexLen:]
	}
}

// isLowerHex reports whether b is all lowercase hex digits.
func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type markSet struct {
	blobs map[string]bool // hex of blobs to keep
	dirs  map[string]bool // hex of layer dirs (diffIDs) to keep
}

// mark computes everything reachable from names, cache values and roots.
func (s *Store) mark(roots func(keep func(v1.Hash)) error) (*markSet, error) {
	ms := &markSet{blobs: map[string]bool{}, dirs: map[string]bool{}}
	var queue []v1.Hash
	keep := func(h v1.Hash) {
		if validHash(h) {
			queue = append(queue, h)
		}
	}
	im, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		keep(d.Digest)
	}
	err = s.walkCache(func(_ string, val []byte, _ int64) {
		digestsIn(val, keep)
	})
	if err != nil {
		return nil, fmt.Errorf("reading build cache: %w", err)
	}
	if roots != nil {
		if err := roots(keep); err != nil {
			return nil, fmt.Errorf("marking roots: %w", err)
		}
	}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if ms.blobs[h.Hex] {
			continue
		}
		// A digest may name a blob, a layer dir (diffID), or both: keep both.
		ms.blobs[h.Hex] = true
		ms.dirs[h.Hex] = true
		for _, c := range s.children(h) {
			keep(c)
		}
	}
	return ms, nil
}

// children returns what the stored blob h references when it is a manifest, an index
// or an image config (diffIDs); nothing for layers and unknown blobs.
func (s *Store) children(h v1.Hash) []v1.Hash {
	p := s.BlobPath(h)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() > 4<<20 {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return nil
	}
	var doc struct {
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
		RootFS    *struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []v1.Hash
	if doc.Config != nil {
		out = append(out, doc.Config.Digest)
	}
	for _, d := range doc.Layers {
		out = append(out, d.Digest)
	}
	for _, d := range doc.Manifests {
		out = append(out, d.Digest)
	}
	if doc.RootFS != nil {
		out = append(out, doc.RootFS.DiffIDs...)
	}
	return out
}

// GC removes blobs and unpacked layer directories that are not reachable (see
// doc.go), including from the leases of other open Stores, and, when no other
// process has the store open, everything under tmp/. Other processes may go on
// using the store meanwhile: GC blocks them only while they add to their leases.
func (s *Store) GC(opts GCOptions) (GCStats, error) {
	var st GCStats
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inuse == nil || s.gcLock == nil {
		return st, errors.New("garbage collecting: store is closed")
	}
	if err := flock(s.gcLock, unix.LOCK_EX); err != nil {
		return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
	}
	defer flock(s.gcLock, unix.LOCK_UN)
	alone := lockInuse(s.inuse, unix.F_WRLCK, false) == nil
	if alone {
		defer lockInuse(s.inuse, unix.F_RDLCK, true)
	}

	roots := func(keep func(v1.Hash)) error {
		if err := s.leasedDigests(keep); err != nil {
			return err
		}
		if opts.Roots != nil {
			return opts.Roots(keep)
		}
		return nil
	}
	ms, err := s.mark(roots)
	if err != nil {
		return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
	}
	blobs, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
	}
	for _, e := range blobs {
		if ms.blobs[e.Name()] {
			continue
		}
		p := s.path("blobs", "sha256", e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		st.Blobs++
		st.Bytes += fi.Size()
		if !opts.DryRun {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
			}
		}
	}
	for _, home := range []string{"layers", "snapshots"} {
		dirs, err := os.ReadDir(s.path(home))
		if err != nil {
			return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
		}
		for _, e := range dirs {
			if ms.dirs[e.Name()] {
				continue
			}
			p := s.path(home, e.Name())
			st.LayerDirs++
			st.Bytes += duBytes(p)
			if !opts.DryRun {
				if err := os.RemoveAll(p); err != nil {
					return st, fmt.Errorf("garbage collecting %q: %w", s.root, err)
				}
			}
		}
	}
	if !opts.DryRun {
		sums, _ := os.ReadDir(s.path("treesums"))
		for _, e := range sums {
			if _, err := os.Lstat(s.path("layers", e.Name())); errors.Is(err, os.ErrNotExist) {
				os.Remove(s.path("treesums", e.Name()))
			}
		}
	}
	if alone {
		st.Bytes += duBytes(s.path("tmp"))
		if !opts.DryRun {
			s.cleanTmp()
		}
	}
	return st, nil
}

// duBytes sums apparent sizes below p, counting each hard-linked inode once.
func duBytes(p string) int64 {
	var n int64
	seen := map[[2]uint64]bool{}
	_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.IsDir() {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := [2]uint64{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

// DiskUsage summarises the store for "slimbuild df".
func (s *Store) DiskUsage() (Usage, error) {
	var u Usage
	list, err := s.List()
	if err != nil {
		return u, err
	}
	u.Images = len(list)
	ms, err := s.mark(nil)
	if err != nil {
		return u, fmt.Errorf("measuring store %q: %w", s.root, err)
	}
	blobs, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return u, fmt.Errorf("measuring store %q: %w", s.root, err)
	}
	for _, e := range blobs {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		u.Blobs++
		u.BlobBytes += fi.Size()
		if !ms.blobs[e.Name()] {
			u.ReclaimableBytes += fi.Size()
		}
	}
	for _, home := range []string{"layers", "snapshots"} {
		dirs, err := os.ReadDir(s.path(home))
		if err != nil {
			return u, fmt.Errorf("measuring store %q: %w", s.root, err)
		}
		for _, e := range dirs {
			n := duBytes(s.path(home, e.Name()))
			u.LayerDirs++
			u.LayerDirBytes += n
			if !ms.dirs[e.Name()] {
				u.ReclaimableBytes += n
			}
		}
	}
	err = s.walkCache(func(_ string, _ []byte, size int64) {
		u.CacheEntries++
		u.CacheBytes += size
	})
	if err != nil {
		return u, fmt.Errorf("measuring build cache: %w", err)
	}
	u.TempBytes = duBytes(s.path("tmp"))
	return u, nil
}
