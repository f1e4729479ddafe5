package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// ErrNotEmpty is returned by Unpack when the target directory is not empty.
var ErrNotEmpty = errors.New("unpack target directory is not empty")

// Unpack extracts the uncompressed OCI layer tar r into dir in overlay lower format:
// .wh.NAME becomes a 0:0 character device NAME, .wh..wh..opq sets trusted.overlay.opaque=y
// on its directory. Every path is resolved inside dir with securejoin; ownership, modes,
// times, xattrs and links are kept.
//
// dir must be empty (ErrNotEmpty otherwise) or not exist yet. Unpack reads r
// up to the end of the tar archive and does not close it. On error, dir holds
// a partial extraction that the caller should remove.
func Unpack(r io.Reader, dir string) error {
	if err := prepareRoot(dir); err != nil {
		return err
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	u := &unpacker{
		root:     filepath.Clean(dir),
		buf:      *buf,
		dirTimes: make(map[string]dirTime),
	}
	tr := tar.NewReader(r)
	return u.run(tr, nil)
}

// run applies first (when not nil) and every further entry of tr, then
// finishes the directories.
func (u *unpacker) run(tr *tar.Reader, first *tar.Header) error {
	for hdr := first; ; hdr = nil {
		if hdr == nil {
			var err error
			hdr, err = tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
				return fmt.Errorf("reading layer tar: %w", err)
			}
		}
		if err := u.apply(tr, hdr); err != nil {
			return fmt.Errorf("unpacking %q: %w", hdr.Name, err)
		}
	}
	return u.finish()
}

func prepareRoot(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating unpack target: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening unpack target: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("reading unpack target %q: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %q", ErrNotEmpty, dir)
	}
	return nil
}

type dirTime struct{ atime, mtime time.Time }

type unpacker struct {
	root     string // clean
	buf      []byte
	dirTimes map[string]dirTime // directory path relative to root ("" the root) -> times, applied last
	// merge is Archive.Merge: into an existing tree, no whiteouts, no opaque
	// directories, no xattrs, the root entry and special files skipped.
	merge bool
	// owner, when set, owns every entry instead of the tar's owners.
	owner *Owner
	// lchown, when set, sets entries' owners instead of lchown(2) (Merge's
	// caller's).
	lchown func(path string, uid, gid int) error
}

// cleanName turns a tar name into a clean relative slash path; "" is the root.
// Leading "/", "./" and any ".." are dropped lexically, as if the name were
// resolved from the layer root.
func cleanName(name string) string {
	c := path.Clean("/" + name)
	return strings.TrimPrefix(c, "/")
}

// parentDir resolves the directory holding rel inside the root, following
// symlinks only within the root, and creates it (0755) if missing.
func (u *unpacker) parentDir(rel string) (string, error) {
	p, err := securejoin.SecureJoin(u.root, path.Dir(rel))
	if err != nil {
		return "", fmt.Errorf("resolving parent directory: %w", err)
	}
	if err := mkdirAll(p); err != nil {
		return "", err
	}
	return p, nil
}

// mkdirAll creates p and its missing parents with mode 0755 regardless of
// umask. p must be free of symlinks (as SecureJoin returns it).
func mkdirAll(p string) error {
	var st unix.Stat_t
	err := unix.Lstat(p, &st)
	if err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("creating parent directory %q: %w", p, unix.ENOTDIR)
		}
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("creating parent directory %q: %w", p, err)
	}
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := unix.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("creating parent directory %q: %w", p, err)
	}
	if err := unix.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("creating parent directory %q: %w", p, err)
	}
	return nil
}

func isDirStat(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func isWhiteoutStat(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func setOpaque(p string) error {
	if err := unix.Lsetxattr(p, overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("marking %q opaque: %w", p, err)
	}
	return nil
}

func (u *unpacker) apply(tr *tar.Reader, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if u.merge {
			return nil
		}
	default:
		if u.merge {
			return nil
		}
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	rel := cleanName(hdr.Name)
	if rel == "" {
		if u.merge {
			return nil // the directory merged into keeps its own metadata
		}
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("layer root must be a directory")
		}
		return u.meta(u.root, hdr)
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, WhiteoutPrefix) && !u.merge {
		return u.whiteout(rel, base, hdr)
	}

	parent, err := u.parentDir(rel)
	if err != nil {
		return err
	}
	target := filepath.Join(parent, base)

	var st unix.Stat_t
	exists := unix.Lstat(target, &st) == nil
	keepDir := exists && isDirStat(&st) && hdr.Typeflag == tar.TypeDir
	// A directory replacing a whiteout of this layer replaces the lower
	// directory wholesale: it must be opaque.
	opaque := exists && isWhiteoutStat(&st) && hdr.Typeflag == tar.TypeDir && !u.merge
	if exists && !keepDir {
		if err := os.RemoveAll(target); err != nil {
			return fmt.Errorf("replacing earlier entry: %w", err)
		}
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !keepDir {
			if err := unix.Mkdir(target, 0o700); err != nil {
				return fmt.Errorf("creating directory: %w", err)
			}
		}
		if opaque {
			if err := setOpaque(target); err != nil {
				return err
			}
		}
	case tar.TypeReg, tar.TypeRegA:
		if err := u.writeFile(target, tr); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlink(hdr.Linkname, target); err != nil {
			return fmt.Errorf("creating symlink: %w", err)
		}
	case tar.TypeLink:
		return u.hardlink(target, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("creating device node: %w", err)
		}
	}
	return u.meta(target, hdr)
}

func (u *unpacker) writeFile(target string, r io.Reader) error {
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	if _, err := io.CopyBuffer(f, r, u.buf); err != nil {
		f.Close()
		return fmt.Errorf("writing file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing file: %w", err)
	}
	return nil
}

// hardlink links target to the layer path linkname, which must already
// exist inside the root.
func (u *unpacker) hardlink(target, linkname string) error {
	lrel := cleanName(linkname)
	if lrel == "" {
		return errors.New("hard link to the layer root")
	}
	// Resolve the link target's parent inside the root; the last component
	// is not followed (link(2) does not follow symlinks either).
	lparent, err := securejoin.SecureJoin(u.root, path.Dir(lrel))
	if err != nil {
		return fmt.Errorf("resolving hard link target %q: %w", linkname, err)
	}
	src := filepath.Join(lparent, path.Base(lrel))
	if err := unix.Link(src, target); err != nil {
		return fmt.Errorf("creating hard link to %q: %w", linkname, err)
	}
	return nil
}

// whiteout applies .wh.NAME and .wh..wh..opq entries.
func (u *unpacker) whiteout(rel, base string, hdr *tar.Header) error {
	if base == OpaqueWhiteout {
		dir, err := securejoin.SecureJoin(u.root, path.Dir(rel))
		if err != nil {
			return fmt.Errorf("resolving opaque directory: %w", err)
		}
		if err := mkdirAll(dir); err != nil {
			return err
		}
		return setOpaque(dir)
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		return nil // other aufs metadata (.wh..wh.plnk, ...) means nothing here
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q", base)
	}
	parent, err := u.parentDir(rel)
	if err != nil {
		return err
	}
	target := filepath.Join(parent, name)
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err == nil {
		// NAME came from this very layer; a whiteout only hides lower
		// layers. A directory of this layer must then hide the lower one.
		if isDirStat(&st) {
			return setOpaque(target)
		}
		return nil
	}
	if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("creating whiteout device: %w", err)
	}
	if err := unix.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("changing owner: %w", err)
	}
	return setTimes(target, hdr)
}

// meta restores owner, mode, xattrs and (except for directories, which are
// done in finish) times of target from hdr.
func (u *unpacker) meta(target string, hdr *tar.Header) error {
	uid, gid := hdr.Uid, hdr.Gid
	if u.owner != nil {
		uid, gid = u.owner.UID, u.owner.GID
	}
	chown := unix.Lchown
	if u.lchown != nil {
		chown = u.lchown
	}
	if err := chown(target, uid, gid); err != nil {
		return fmt.Errorf("changing owner: %w", err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid/setgid.
		if err := unix.Fchmodat(unix.AT_FDCWD, target, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("changing mode: %w", err)
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || !keepXattr(name) || u.merge {
			continue
		}
		// After chown and writing, which clear security.capability.
		if err := unix.Lsetxattr(target, name, []byte(v), 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w", name, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		// target is root or below it, as SecureJoin returned it.
		rel := strings.TrimPrefix(strings.TrimPrefix(target, u.root), "/")
		u.dirTimes[rel] = dirTime{atime: atimeOf(hdr), mtime: hdr.ModTime}
		return nil
	}
	return setTimes(target, hdr)
}

func atimeOf(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func setTimes(target string, hdr *tar.Header) error {
	return utimes(target, atimeOf(hdr), hdr.ModTime)
}

func utimes(target string, atime, mtime time.Time) error {
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// finish sets directory times, now that no more children will be created.
// A later entry may have removed a directory or put a symlink in place of it or
// of a parent: each path is resolved again from the root without following any
// symlink (OpenBeneath) and skipped when that fails or no longer ends in a
// directory; times are set relative to the parent's descriptor.
func (u *unpacker) finish() error {
	root, err := unix.Open(u.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("finishing directories: %w", &os.PathError{Op: "open", Path: u.root, Err: err})
	}
	defer unix.Close(root)
	for rel, t := range u.dirTimes {
		if err := setDirTimes(root, rel, t); err != nil {
			return fmt.Errorf("finishing directory %q: %w", rel, err)
		}
	}
	return nil
}

// setDirTimes sets the times of the directory rel below root (see finish).
func setDirTimes(root int, rel string, t dirTime) error {
	dir, name := path.Dir(rel), path.Base(rel)
	if rel == "" {
		dir, name = "", "."
	} else if dir == "." {
		dir = ""
	}
	parent, err := OpenBeneath(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return nil // a parent is gone or is no longer a directory
	case err != nil:
		return err
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || !isDirStat(&st) {
		return nil
	}
	ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
	if err := unix.UtimesNanoAt(parent, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}
