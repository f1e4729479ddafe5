package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// Problem kinds reported by Fsck. Corruption (the first five) must never follow
// from a crash; leftovers (the rest) are what a killed process may leave and what
// the next Open that holds the store alone reclaims.
const (
	ProblemIndex     = "index"     // index.json unreadable
	ProblemName      = "name"      // a name whose manifest, config or layers are missing or corrupt
	ProblemBlob      = "blob"      // a blob whose content does not match its digest
	ProblemLayer     = "layer"     // an unpacked layer directory that does not match its diffID
	ProblemCache     = "cache"     // a build cache record pointing at a missing or corrupt layer
	ProblemTmp       = "tmp"       // a leftover under tmp/
	ProblemMount     = "mount"     // a leftover mount under the root
	ProblemContainer = "container" // a leftover runc container of a dead build
	ProblemProcess   = "process"   // a leftover process running inside tmp/
)

// FsckOptions tune Fsck.
type FsckOptions struct {
	// Repair removes what is corrupt (names pointing at it, blobs, layer
	// directories, cache records) and reclaims leftovers. Layer directories are
	// re-made on demand from their blobs; names and cache records are not.
	Repair bool
}

// Problem is one thing Fsck found.
type Problem struct {
	Kind     string // one of the Problem* constants
	Path     string // the name, digest or file concerned
	Msg      string
	Repaired bool
}

func (p Problem) String() string {
	s := p.Kind + " " + p.Path + ": " + p.Msg
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// Corruption reports whether p is damage rather than a leftover of a killed process.
func (p Problem) Corruption() bool {
	switch p.Kind {
	case ProblemTmp, ProblemMount, ProblemContainer, ProblemProcess:
		return false
	}
	return true
}

// FsckReport is what Fsck checked and found.
type FsckReport struct {
	Names, Blobs, LayerDirs, CacheEntries int // how many of each were checked
	// Busy is set when other processes had the store open: their tmp/ entries,
	// mounts and containers are in use, so leftovers were not looked for.
	Busy     bool
	Problems []Problem
}

// Clean reports whether nothing is wrong any more (nothing found, or all repaired).
func (r *FsckReport) Clean() bool {
	for _, p := range r.Problems {
		if !p.Repaired {
			return false
		}
	}
	return true
}

// Fsck checks the store at root: every name points to a complete manifest whose
// config and layer blobs exist and match their digests; every blob matches its
// digest; every unpacked layer directory matches its diffID; every build cache
// record that names a layer blob points at a good one; and, when no other process
// has the store open, it looks for leftovers of killed processes (tmp/ entries,
// mounts, runc containers, processes). Blobs and trees are read streaming.
//
// Fsck does not reclaim leftovers on open as Open does, so it can report them.
// While it looks for them it holds the store exclusively (other Opens wait).
func Fsck(ctx context.Context, root string, opts FsckOptions) (*FsckReport, error) {
	s, err := open(root, false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := &FsckReport{}
	add := func(p Problem) { rep.Problems = append(rep.Problems, p) }

	if lockInuse(s.inuse, unix.F_WRLCK, false) == nil {
		for _, it := range s.findStale(ctx) {
			p := Problem{Kind: it.kind, Path: it.path, Msg: it.msg}
			if opts.Repair {
				if err := s.reclaim(ctx, it); err != nil {
					p.Msg += "; reclaiming: " + err.Error()
				} else {
					p.Repaired = true
				}
			}
			add(p)
		}
		if err := lockInuse(s.inuse, unix.F_RDLCK, true); err != nil {
			return nil, fmt.Errorf("checking store %q: %w", root, err)
		}
	} else {
		rep.Busy = true
	}

	c := &checker{s: s, ctx: ctx, opts: opts, add: add, blobs: map[v1.Hash]error{}, diffBlobs: map[v1.Hash]LayerInfo{}, busy: rep.Busy}
	if err := c.checkBlobs(rep); err != nil {
		return nil, err
	}
	if err := c.checkNames(rep); err != nil {
		return nil, err
	}
	if err := c.checkCache(rep); err != nil {
		return nil, err
	}
	if err := c.checkLayerDirs(rep); err != nil {
		return nil, err
	}
	return rep, nil
}

type checker struct {
	s    *Store
	ctx  context.Context
	opts FsckOptions
	add  func(Problem)

	blobs     map[v1.Hash]error     // every blob file hashed: nil when it matches its name
	diffBlobs map[v1.Hash]LayerInfo // diffID -> a good blob holding that layer
	scanned   bool                  // blobFor looked at every blob
	busy      bool                  // other processes have the store open
}

// blobErr says why blob h is not usable (nil when it is present and matches).
// A blob written by a concurrent build after checkBlobs listed the directory is
// hashed now.
func (c *checker) blobErr(h v1.Hash) error {
	if err, ok := c.blobs[h]; ok {
		return err
	}
	if !validHash(h) {
		return errors.New("bad digest")
	}
	got, err := hashFile(c.s.BlobPath(h))
	switch {
	case errors.Is(err, os.ErrNotExist):
		err = errors.New("missing")
	case err == nil && got != h:
		err = fmt.Errorf("content has digest %s", got)
	}
	c.blobs[h] = err
	return err
}

func (c *checker) checkBlobs(rep *FsckReport) error {
	dir := c.s.path("blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checking blobs: %w", err)
	}
	for _, e := range ents {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rep.Blobs++
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		p := filepath.Join(dir, e.Name())
		var bad error
		if !validHash(h) || !e.Type().IsRegular() {
			bad = errors.New("not a blob (bad name or not a regular file)")
		} else if got, err := hashFile(p); errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile (by GC); names that need it are checked below
		} else if err != nil {
			bad = err
		} else if got != h {
			bad = fmt.Errorf("content has digest %s (truncated or overwritten)", got)
		}
		if bad == nil {
			c.blobs[h] = nil
			continue
		}
		c.blobs[h] = bad
		prob := Problem{Kind: ProblemBlob, Path: "blobs/sha256/" + e.Name(), Msg: bad.Error()}
		if c.opts.Repair && os.RemoveAll(p) == nil {
			prob.Repaired = true
		}
		c.add(prob)
	}
	if c.opts.Repair {
		return SyncDir(dir)
	}
	return nil
}

func hashFile(p string) (v1.Hash, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h, _, err := v1.SHA256(f)
	return h, err
}

// readGoodBlob reads a small blob that checkBlobs found good.
func (c *checker) readGoodBlob(h v1.Hash) ([]byte, error) {
	if err := c.blobErr(h); err != nil {
		return nil, err
	}
	fi, err := os.Stat(c.s.BlobPath(h))
	if err != nil {
		return nil, err
	}
	if fi.Size() > 4<<20 {
		return nil, fmt.Errorf("%d bytes, too large for a manifest or config", fi.Size())
	}
	return os.ReadFile(c.s.BlobPath(h))
}

// checkManifest checks that manifest (or index) h and everything it references is
// present and good, and records each layer's diffID.
func (c *checker) checkManifest(h v1.Hash, mt types.MediaType, depth int) error {
	b, err := c.readGoodBlob(h)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", h, err)
	}
	if mt.IsIndex() {
		if depth > 4 {
			return fmt.Errorf("index %s: nested too deeply", h)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("index %s: %w", h, err)
		}
		for _, d := range im.Manifests {
			if err := c.checkManifest(d.Digest, d.MediaType, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", h, err)
	}
	cb, err := c.readGoodBlob(m.Config.Digest)
	if err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	var cf struct {
		RootFS struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cb, &cf); err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s lists %d diffIDs for %d layers", m.Config.Digest, len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		if !l.MediaType.IsDistributable() {
			continue // foreign layer: referenced, never stored
		}
		if err := c.blobErr(l.Digest); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		c.diffBlobs[cf.RootFS.DiffIDs[i]] = LayerInfo{DiffID: cf.RootFS.DiffIDs[i], Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
	}
	return nil
}

func (c *checker) checkNames(rep *FsckReport) error {
	im, err := c.s.readIndex()
	if err != nil {
		c.add(Problem{Kind: ProblemIndex, Path: "index.json", Msg: err.Error()})
		return nil
	}
	var bad []string
	for _, d := range im.Manifests {
		rep.Names++
		name := d.Annotations[RefNameAnnotation]
		if err := c.checkManifest(d.Digest, d.MediaType, 0); err != nil {
			c.add(Problem{Kind: ProblemName, Path: name, Msg: err.Error(), Repaired: c.opts.Repair})
			bad = append(bad, name)
		}
	}
	if !c.opts.Repair || len(bad) == 0 {
		return nil
	}
	drop := map[string]bool{}
	for _, n := range bad {
		drop[n] = true
	}
	return c.s.updateIndex(func(im *v1.IndexManifest) error {
		out := im.Manifests[:0]
		for _, d := range im.Manifests {
			if !drop[d.Annotations[RefNameAnnotation]] {
				out = append(out, d)
			}
		}
		im.Manifests = out
		return nil
	})
}

// checkCache checks the records that name a layer blob (a top-level "layer"
// object with a digest, as the build engine writes them).
func (c *checker) checkCache(rep *FsckReport) error {
	entries, err := c.s.CacheEntries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		rep.CacheEntries++
		b, err := os.ReadFile(c.s.cachePath(e.Key))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking cache key %s: %w", e.Key, err)
		}
		var rec StepRecord
		if json.Unmarshal(b, &rec) != nil || (rec.Layer == nil && rec.Snapshot == nil) {
			continue
		}
		if rec.Snapshot != nil {
			// A snapshot's blob is made on demand; its tree must be somewhere.
			_, inSnapshots := c.s.SnapshotDir(*rec.Snapshot)
			promoted := false
			if rec.Layer != nil {
				_, promoted = c.s.LayerDirPath(rec.Layer.DiffID)
			}
			if inSnapshots || promoted {
				if rec.Layer != nil && c.blobErr(rec.Layer.Digest) == nil && validHash(rec.Layer.DiffID) {
					c.diffBlobs[rec.Layer.DiffID] = *rec.Layer
				}
				continue
			}
			if rec.Layer == nil {
				p := Problem{Kind: ProblemCache, Path: e.Key, Msg: fmt.Sprintf("snapshot %s is missing", rec.Snapshot.Hex)}
				if c.opts.Repair && c.s.DeleteCache(e.Key) == nil {
					p.Repaired = true
				}
				c.add(p)
				continue
			}
		}
		if err := c.blobErr(rec.Layer.Digest); err != nil {
			p := Problem{Kind: ProblemCache, Path: e.Key, Msg: fmt.Sprintf("layer blob %s: %v", rec.Layer.Digest, err)}
			if c.opts.Repair && c.s.DeleteCache(e.Key) == nil {
				p.Repaired = true
			}
			c.add(p)
			continue
		}
		if validHash(rec.Layer.DiffID) {
			c.diffBlobs[rec.Layer.DiffID] = *rec.Layer
		}
	}
	return nil
}

// checkLayerDirs re-tars every unpacked layer directory with the layer writer. A
// directory slimbuild wrote itself hashes to its diffID; one unpacked from a blob
// made elsewhere may not (entry order, header format), so on a mismatch the blob
// is unpacked afresh and both trees are compared through the same writer.
func (c *checker) checkLayerDirs(rep *FsckReport) error {
	ents, err := os.ReadDir(c.s.path("layers"))
	if err != nil {
		return fmt.Errorf("checking layer dirs: %w", err)
	}
	for _, e := range ents {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rep.LayerDirs++
		diffID := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		dir := c.s.path("layers", e.Name())
		bad := c.checkLayerDir(diffID, dir, e)
		if bad == nil {
			continue
		}
		p := Problem{Kind: ProblemLayer, Path: "layers/" + e.Name(), Msg: bad.Error()}
		if c.opts.Repair {
			// Out of the way atomically, then removed: LayerDir re-makes it on demand.
			c.s.removeTreeSum(diffID)
			if tmp, err := c.s.TempDir("fsck-"); err == nil {
				if os.Rename(dir, filepath.Join(tmp, "layer")) == nil && SyncDir(c.s.path("layers")) == nil {
					p.Repaired = true
				}
				os.RemoveAll(tmp)
			}
		}
		c.add(p)
	}
	return nil
}

func (c *checker) checkLayerDir(diffID v1.Hash, dir string, e os.DirEntry) error {
	if !validHash(diffID) || !e.IsDir() {
		return errors.New("not a layer directory (bad name or not a directory)")
	}
	got, err := treeDigest(dir)
	if err != nil {
		return err
	}
	if got == diffID || got == c.s.readTreeSum(diffID) {
		return nil
	}
	info, ok := c.blobFor(diffID)
	if !ok {
		if c.busy {
			return nil // perhaps a running build's layer whose blob is not in yet; not judged
		}
		return fmt.Errorf("tree has digest %s and no stored blob holds this diffID to compare with", got)
	}
	l, err := c.s.Layer(info)
	if err != nil {
		return err
	}
	fresh, err := c.s.unpackTemp(l, diffID)
	if err != nil {
		return fmt.Errorf("unpacking its blob %s to compare: %w", info.Digest, err)
	}
	defer os.RemoveAll(fresh)
	want, err := treeDigest(fresh)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("tree differs from its blob %s (tree digest %s, want %s)", info.Digest, got, want)
	}
	// Remembered, so that the next check of this layer needs no unpack.
	_ = c.s.writeTreeSum(diffID, want)
	return nil
}

// blobFor finds a good blob holding the layer diffID: one that a name or a cache
// record pairs with it, or else (once per run) any other blob whose uncompressed
// content hashes to it, such as a layer of a build whose record was pruned.
func (c *checker) blobFor(diffID v1.Hash) (LayerInfo, bool) {
	if info, ok := c.diffBlobs[diffID]; ok {
		return info, true
	}
	if c.scanned {
		return LayerInfo{}, false
	}
	c.scanned = true
	known := map[v1.Hash]bool{}
	for _, info := range c.diffBlobs {
		known[info.Digest] = true
	}
	for h, err := range c.blobs {
		if err != nil || known[h] || c.ctx.Err() != nil {
			continue
		}
		info := LayerInfo{Digest: h, MediaType: types.OCILayer}
		l := &blobLayer{s: c.s, digest: h, mediaType: info.MediaType}
		d, err := l.DiffID() // decompresses what it recognises, hashes the rest as is
		if err != nil {
			continue
		}
		info.DiffID = d
		if _, ok := c.diffBlobs[d]; !ok {
			c.diffBlobs[d] = info
		}
	}
	info, ok := c.diffBlobs[diffID]
	return info, ok
}

// Tree sums: ROOT/treesums/DIFFID holds the digest of the tar the layer writer
// makes of a correct unpack of DIFFID, where that differs from DIFFID itself (a
// layer written elsewhere: other entry order or header format). Fsck writes one
// after checking a directory against a fresh unpack of its blob, so the next check
// needs only the re-tar. Unpack and the writer are deterministic, so the sum
// depends on the diffID alone; GC removes it with its layer directory.

func (s *Store) treeSumPath(diffID v1.Hash) string { return s.path("treesums", diffID.Hex) }

func (s *Store) readTreeSum(diffID v1.Hash) v1.Hash {
	b, err := os.ReadFile(s.treeSumPath(diffID))
	if err != nil {
		return v1.Hash{}
	}
	h, err := v1.NewHash(string(b))
	if err != nil || !validHash(h) {
		return v1.Hash{}
	}
	return h
}

func (s *Store) writeTreeSum(diffID, sum v1.Hash) error {
	if err := os.MkdirAll(s.path("treesums"), 0o700); err != nil {
		return err
	}
	return s.writeFileAtomic(s.treeSumPath(diffID), []byte(sum.String()))
}

func (s *Store) removeTreeSum(diffID v1.Hash) { os.Remove(s.treeSumPath(diffID)) }

// treeDigest is the sha256 of the layer tar that the layer writer makes of dir.
func treeDigest(dir string) (v1.Hash, error) {
	hw := sha256.New()
	if err := layer.Write(hw, dir, layer.WriteOptions{}); err != nil {
		return v1.Hash{}, fmt.Errorf("reading tree: %w", err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hw.Sum(nil))}, nil
}
