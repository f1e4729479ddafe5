package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// copyBufSize is the size of the buffer reused for every file body.
const copyBufSize = 1 << 20

// copyBufs recycles copy buffers across Writers and Unpacks.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// WriteOptions tune Write.
type WriteOptions struct {
	// Skip names paths (relative, slash-separated, no leading slash) left out of the tar.
	Skip func(rel string) bool
	// SourceDateEpoch, if set, clamps entry times to it (see Writer.SetSourceDateEpoch).
	SourceDateEpoch *time.Time
}

// Write streams the directory dir as an uncompressed OCI layer tar to w, in lexical order.
// Overlay whiteouts in dir (0:0 character devices, trusted.overlay.opaque=y) become OCI
// whiteouts (.wh.NAME, .wh..wh..opq). Hard links within dir are kept as tar links.
//
// The root directory itself gets no entry. Write writes the tar trailer but
// does not close w.
func Write(w io.Writer, dir string, opts WriteOptions) error {
	lw := NewWriter(w)
	defer lw.release()
	if opts.SourceDateEpoch != nil {
		lw.SetSourceDateEpoch(*opts.SourceDateEpoch)
	}
	if err := lw.Add(dir, "", AddOptions{Skip: opts.Skip, Overlay: true}); err != nil {
		return err
	}
	return lw.Close()
}

// Stream is Write as a reader: the tar of dir, written by a goroutine as it is
// read. Closing the reader early stops the writer.
func Stream(dir string, opts WriteOptions) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(Write(pw, dir, opts)) }()
	return pr
}

// Owner is a numeric owner for tar entries.
type Owner struct {
	UID, GID int
}

// AddOptions tune Writer.Add.
type AddOptions struct {
	// Skip, if set, is called with each path below src (slash-separated,
	// relative to src, no leading or trailing slash); returning true leaves
	// the path, and for a directory its whole subtree, out.
	Skip func(rel string) bool
	// Overlay converts overlayfs whiteouts found in src into OCI whiteouts:
	// a 0:0 character device NAME becomes an empty file .wh.NAME, and a
	// directory with trusted.overlay.opaque=y is followed by DIR/.wh..wh..opq.
	// Leave it off for trees that are not overlay upper directories.
	Overlay bool
	// Owner, if set, replaces the owner of every entry (COPY --chown).
	Owner *Owner
	// Perm, if set, replaces the Unix mode bits (07777) of every entry
	// except symlinks (COPY --chmod).
	Perm *uint32
	// ModTime, if set, replaces the mtime of every entry.
	ModTime *time.Time
	// ContentsOnly, for a directory src, writes what is under it but not its
	// own entry at dest (COPY gives the destination directory its own
	// metadata, written before with Mkdir).
	ContentsOnly bool
}

// Writer writes OCI layer tar entries from files on disk. It is the
// building block of Write and of layers that do not mirror one directory
// (COPY): Add any number of trees at chosen destinations, then Close.
//
// Entries must be added parents first; the Writer does not sort across
// calls. Hard links are detected across all Adds of one Writer.
type Writer struct {
	tw    *tar.Writer
	buf   *[]byte
	links map[fileID]string
	xbuf  []byte
	epoch *time.Time // clamp for entry times, if set
}

type fileID struct{ dev, ino uint64 }

// NewWriter returns a Writer writing a tar stream to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{
		tw:    tar.NewWriter(w),
		buf:   copyBufs.Get().(*[]byte),
		links: make(map[fileID]string),
		xbuf:  make([]byte, 1024),
	}
}

// SetSourceDateEpoch makes the Writer clamp every entry time it writes from
// now on to epoch (truncated to seconds): an mtime later than epoch becomes
// epoch, an earlier one stays, as BuildKit's rewrite-timestamp does. Access
// and change times are never written, so the mtime is the only time in the tar.
func (w *Writer) SetSourceDateEpoch(epoch time.Time) {
	e := epoch.Truncate(time.Second).UTC()
	w.epoch = &e
}

// mtime is the time written for t: whole seconds, clamped to the epoch if set.
func (w *Writer) mtime(t time.Time) time.Time {
	t = t.Truncate(time.Second)
	if w.epoch != nil && t.After(*w.epoch) {
		return *w.epoch
	}
	return t
}

// Close writes the tar trailer. It does not close the underlying writer.
// The Writer must not be used afterwards.
func (w *Writer) Close() error {
	defer w.release()
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("finishing layer tar: %w", err)
	}
	return nil
}

// Mkdir writes a directory entry named dest (slash-separated, relative,
// no leading slash), e.g. the parents of a COPY destination.
func (w *Writer) Mkdir(dest string, perm uint32, owner Owner, mtime time.Time) error {
	if dest == "" || checkDest(dest) != nil {
		return fmt.Errorf("adding directory %q: %w", dest, errBadDest)
	}
	if err := checkName(dest); err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeDir,
		Name:     dest + "/",
		Mode:     int64(perm & 0o7777),
		Uid:      owner.UID,
		Gid:      owner.GID,
		ModTime:  w.mtime(mtime),
		Format:   tar.FormatPAX,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
	}
	return nil
}

// release returns the copy buffer to the pool (once).
func (w *Writer) release() {
	if w.buf != nil {
		copyBufs.Put(w.buf)
		w.buf = nil
	}
}

var errBadDest = errors.New("destination must be a clean relative slash-separated path")

func checkDest(dest string) error {
	if dest == "" {
		return nil
	}
	if path.Clean(dest) != dest || strings.HasPrefix(dest, "/") || dest == ".." || strings.HasPrefix(dest, "../") {
		return errBadDest
	}
	return nil
}

// Add writes src into the tar at dest (slash-separated, relative, no
// leading slash). If src is a directory, an entry for dest itself is written
// (unless dest is "", the layer root) followed by its whole subtree in
// depth-first order: parents before children, each directory's entries
// sorted by the name written (so a whiteout sorts as .wh.NAME), a
// directory's subtree right after it. If src is anything else, a single entry named dest is written;
// dest must not be "".
//
// Sockets are skipped: tar cannot represent them.
func (w *Writer) Add(src, dest string, opts AddOptions) error {
	if err := checkDest(dest); err != nil {
		return fmt.Errorf("adding %q as %q: %w", src, dest, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("adding %q: %w", src, &os.PathError{Op: "lstat", Path: src, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if dest == "" {
			return fmt.Errorf("adding %q: a non-directory cannot be the layer root", src)
		}
		return w.entry(src, dest, &st, &opts)
	}
	if dest != "" && !opts.ContentsOnly {
		if err := w.entry(src, dest, &st, &opts); err != nil {
			return err
		}
	} else if opts.Overlay {
		if err := w.opaque(src, "", &st, &opts); err != nil {
			return err
		}
	}
	return w.walk(src, "", dest, &opts)
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// child is one directory entry, stat'ed, with the name it sorts by.
type child struct {
	name string // on disk
	key  string // in the tar: .wh.NAME for whiteouts
	st   unix.Stat_t
}

func (w *Writer) walk(dir, rel, dest string, opts *AddOptions) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("reading directory %q: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %q: %w", dir, err)
	}
	children := make([]child, 0, len(names))
	for _, name := range names {
		if opts.Skip != nil && opts.Skip(join(rel, name)) {
			continue
		}
		children = append(children, child{name: name, key: name})
		c := &children[len(children)-1]
		p := dir + "/" + name
		if err := unix.Lstat(p, &c.st); err != nil {
			return fmt.Errorf("adding %q: %w", p, &os.PathError{Op: "lstat", Path: p, Err: err})
		}
		if opts.Overlay && isWhiteoutStat(&c.st) {
			c.key = WhiteoutPrefix + name
		}
	}
	// Sort by the names written, so whiteouts sit where .wh.NAME sorts.
	slices.SortFunc(children, func(a, b child) int { return strings.Compare(a.key, b.key) })
	for i := range children {
		c := &children[i]
		p := dir + "/" + c.name
		childDest := join(dest, c.name)
		if err := w.entry(p, childDest, &c.st, opts); err != nil {
			return err
		}
		if isDirStat(&c.st) {
			if err := w.walk(p, join(rel, c.name), childDest, opts); err != nil {
				return err
			}
		}
	}
	return nil
}

// baseHeader fills the fields shared by every entry made from st.
func (w *Writer) baseHeader(name string, st *unix.Stat_t, opts *AddOptions) *tar.Header {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	if opts.Owner != nil {
		hdr.Uid, hdr.Gid = opts.Owner.UID, opts.Owner.GID
	}
	if opts.ModTime != nil {
		hdr.ModTime = *opts.ModTime
	}
	hdr.ModTime = w.mtime(hdr.ModTime)
	return hdr
}

func (w *Writer) entry(p, name string, st *unix.Stat_t, opts *AddOptions) error {
	if err := checkName(name); err != nil {
		return err
	}
	hdr := w.baseHeader(name, st, opts)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("adding %q: %w", p, err)
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR:
		if opts.Overlay && st.Rdev == 0 {
			return w.whiteout(name, st, opts)
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default: // sockets and anything unknown
		return nil
	}
	if opts.Perm != nil && hdr.Typeflag != tar.TypeSymlink {
		hdr.Mode = int64(*opts.Perm & 0o7777)
	}

	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		id := fileID{dev: st.Dev, ino: st.Ino}
		if first, ok := w.links[id]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			if err := w.tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
			}
			return nil
		}
		w.links[id] = name
	}

	xattrs, err := w.readXattrs(p)
	if err != nil {
		return fmt.Errorf("adding %q: %w", p, err)
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(xattrs))
		for k, v := range xattrs {
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
	}

	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if err := w.copyFile(p, hdr.Size); err != nil {
			return fmt.Errorf("adding %q: %w", p, err)
		}
	case tar.TypeDir:
		if opts.Overlay {
			return w.opaque(p, name, st, opts)
		}
	}
	return nil
}

func (w *Writer) copyFile(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w.tw, io.LimitReader(f, size), *w.buf)
	if err != nil {
		return fmt.Errorf("copying file body: %w", err)
	}
	if n != size {
		return fmt.Errorf("file shrank while being read: %d of %d bytes", n, size)
	}
	return nil
}

// whiteout writes the OCI whiteout for the overlay whiteout device name.
func (w *Writer) whiteout(name string, st *unix.Stat_t, opts *AddOptions) error {
	hdr := w.baseHeader(path.Join(path.Dir(name), WhiteoutPrefix+path.Base(name)), st, opts)
	hdr.Typeflag = tar.TypeReg
	hdr.Mode = 0o600
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
	}
	return nil
}

// opaque writes DIR/.wh..wh..opq if the directory p is overlay-opaque.
func (w *Writer) opaque(p, name string, st *unix.Stat_t, opts *AddOptions) error {
	n, err := unix.Lgetxattr(p, overlayOpaqueXattr, w.xbuf[:8])
	if err != nil {
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ERANGE) {
			return nil
		}
		return fmt.Errorf("reading %s of %q: %w", overlayOpaqueXattr, p, err)
	}
	if string(w.xbuf[:n]) != "y" {
		return nil
	}
	hdr := w.baseHeader(join(name, OpaqueWhiteout), st, opts)
	hdr.Typeflag = tar.TypeReg
	hdr.Mode = 0o600
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
	}
	return nil
}

// ClampTimes sets the times of every path below dir whose mtime is later than
// epoch to epoch, so that an unpacked layer directory matches the layer a
// Writer with the same epoch made from it. It never follows symlinks: a link
// gets its own times changed, never its target's. dir itself is left alone
// (it has no tar entry).
func ClampTimes(dir string, epoch time.Time) error {
	epoch = epoch.Truncate(time.Second)
	ts := []unix.Timespec{timespec(epoch), timespec(epoch)}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("clamping times under %q: %w", dir, err)
		}
		if p == dir {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("clamping times: %w", &os.PathError{Op: "lstat", Path: p, Err: err})
		}
		if !time.Unix(st.Mtim.Sec, st.Mtim.Nsec).After(epoch) {
			return nil
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("clamping times: %w", &os.PathError{Op: "utimensat", Path: p, Err: err})
		}
		return nil
	})
}
