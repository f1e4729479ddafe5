package slim

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// extract writes the flattened filesystem tar r (as mutate.Extract produces it:
// whiteouts applied, upper layers first, each path once) into dir. Every name
// and hard-link target is resolved inside dir with securejoin. Owners, modes,
// times and xattrs are kept; parents met before their own entry are made 0755
// and fixed when the entry arrives.
func extract(r io.Reader, dir string) error {
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	type link struct{ target, old, name string }
	var links []link
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return fmt.Errorf("reading filesystem tar: %w", err)
		}
		name := strings.Trim(filepath.Clean("/"+hdr.Name), "/")
		if name == "" || name == "." {
			continue
		}
		target, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeDir {
			// A directory already there was made for an upper layer's children
			// (the stream comes upper layers first): it wins over this entry.
			if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
				continue
			}
			if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		}
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
			dirs = append(dirs, dirTime{target, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
			_, err = io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			old, err := securejoin.SecureJoin(dir, strings.Trim(filepath.Clean("/"+hdr.Linkname), "/"))
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
			if err := os.Link(old, target); err != nil {
				// The target may come later in a flattened stream: retry at the end.
				links = append(links, link{target, old, hdr.Name})
			}
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			m := mode
			switch hdr.Typeflag {
			case tar.TypeChar:
				m |= unix.S_IFCHR
			case tar.TypeBlock:
				m |= unix.S_IFBLK
			default:
				m |= unix.S_IFIFO
			}
			if err := unix.Mknod(target, m, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		default:
			continue
		}
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeSymlink {
			if err := unix.Chmod(target, mode); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		}
		for k, v := range hdr.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				_ = unix.Lsetxattr(target, x, []byte(v), 0) // best effort: the filesystem may refuse some namespaces
			}
		}
		if hdr.Typeflag != tar.TypeDir {
			if err := setTime(target, hdr.ModTime); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		}
	}
	for _, l := range links {
		if err := os.Link(l.old, l.target); err != nil {
			return fmt.Errorf("extracting hard link %q: %w", l.name, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTime(dirs[i].path, dirs[i].mtime); err != nil {
			return fmt.Errorf("setting times of %s: %w", dirs[i].path, err)
		}
	}
	return nil
}

func setTime(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
