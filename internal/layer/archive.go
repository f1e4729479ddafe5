package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// ErrNotArchive is returned by OpenArchive when a stream is not a tar archive
// (plain or compressed as Decompress reads it).
var ErrNotArchive = errors.New("not a tar archive")

// Archive is a possibly compressed tar archive whose first entry has been
// read, as ADD finds one among its sources.
type Archive struct {
	rc    io.ReadCloser
	tr    *tar.Reader
	first *tar.Header
}

// OpenArchive reads r as a tar archive, compressed or not, up to its first
// entry; ErrNotArchive (wrapped) means it is not one, and nothing of r should
// be taken for an archive. Close frees the decompressor and leaves r open.
func OpenArchive(r io.Reader) (*Archive, error) {
	rc, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotArchive, err)
	}
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
		rc.Close()
		return nil, fmt.Errorf("%w: %w", ErrNotArchive, err)
	}
	return &Archive{rc: rc, tr: tr, first: hdr}, nil
}

// Close frees the decompressor.
func (a *Archive) Close() error { return a.rc.Close() }

// MergeOptions is how Archive.Merge places entries.
type MergeOptions struct {
	// Owner, when set, owns every entry instead of the archive's owners.
	Owner *Owner
	// Lchown sets each entry's owner, without following a symlink, on the
	// path Merge resolved beneath dir (nil: lchown(2)).
	Lchown func(path string, uid, gid int) error
}

// Merge extracts the archive into the existing directory dir, as ADD does:
// entries are resolved beneath dir as Unpack resolves them, later ones replace
// what is there (a directory is kept and takes the entry's owner and mode),
// and modes, owners (or opts.Owner) and times come from the archive. Unlike
// Unpack it merges: dir may hold files, dir's own entry ("./") is skipped,
// ".wh." names are ordinary files, no directory is made opaque, xattrs are not
// set, and device nodes, fifos and unknown entry types are skipped. Merge reads
// the archive to its end; on error dir holds a partial extraction.
func (a *Archive) Merge(dir string, opts MergeOptions) error {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	u := &unpacker{
		root:     filepath.Clean(dir),
		buf:      *buf,
		dirTimes: make(map[string]dirTime),
		merge:    true,
		owner:    opts.Owner,
		lchown:   opts.Lchown,
	}
	return u.run(a.tr, a.first)
}
