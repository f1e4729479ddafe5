package layer

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// OCI whiteout names (image-spec layer.md).
const (
	// WhiteoutPrefix marks a deleted path: .wh.NAME hides NAME of lower layers.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix starts names reserved for whiteout metadata; entries
	// with this prefix other than OpaqueWhiteout are ignored on Unpack.
	WhiteoutMetaPrefix = ".wh..wh."
	// OpaqueWhiteout inside a directory hides every lower-layer child of it.
	OpaqueWhiteout = ".wh..wh..opq"
)

// ErrReservedName is returned by Writer (Add, Mkdir, and so Write) for a file
// whose name starts with WhiteoutPrefix: in a layer it would not be a file but
// a whiteout deleting something of the layers below (or, .wh..wh..opq, all of
// a directory). The error names the path as the image will see it.
var ErrReservedName = errors.New(`file names starting with ".wh." are reserved for layer whiteouts`)

// checkName refuses a layer path (relative, slash-separated) whose last
// element starts with WhiteoutPrefix.
func checkName(name string) error {
	if strings.HasPrefix(path.Base(name), WhiteoutPrefix) {
		return fmt.Errorf("/%s: %w", name, ErrReservedName)
	}
	return nil
}

const (
	overlayOpaqueXattr = "trusted.overlay.opaque"
	paxXattrPrefix     = "SCHILY.xattr."
)

// IsWhiteout reports whether fi describes an overlayfs whiteout: a character
// device with device number 0:0. fi must come from os.Lstat or similar
// (Sys() a *syscall.Stat_t); otherwise IsWhiteout returns false.
func IsWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != fs.ModeDevice|fs.ModeCharDevice {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// keepXattr reports whether an extended attribute travels in layers: user.*
// (except user.overlay.*, which an overlay mounted with userxattr would
// obey) and security.capability. trusted.* never does.
func keepXattr(name string) bool {
	if name == "security.capability" {
		return true
	}
	return strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "user.overlay.")
}

// readXattrs returns the kept extended attributes of p (not following a
// final symlink), or nil if there are none.
func (w *Writer) readXattrs(p string) (map[string]string, error) {
	n, err := listXattr(p, &w.xbuf)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	var out map[string]string
	for _, name := range strings.Split(strings.TrimSuffix(string(w.xbuf[:n]), "\x00"), "\x00") {
		if !keepXattr(name) {
			continue
		}
		val, err := getXattr(p, name, &w.xbuf)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = val
	}
	return out, nil
}

func listXattr(p string, buf *[]byte) (int, error) {
	for {
		n, err := unix.Llistxattr(p, *buf)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, unix.ENOTSUP):
			return 0, nil
		case errors.Is(err, unix.ERANGE):
			size, err := unix.Llistxattr(p, nil)
			if err != nil {
				return 0, fmt.Errorf("listing xattrs: %w", err)
			}
			*buf = make([]byte, size+64)
		default:
			return 0, fmt.Errorf("listing xattrs: %w", err)
		}
	}
}

// getXattr reads one attribute; the returned string is a copy.
func getXattr(p, name string, buf *[]byte) (string, error) {
	for {
		n, err := unix.Lgetxattr(p, name, *buf)
		switch {
		case err == nil:
			return string((*buf)[:n]), nil
		case errors.Is(err, unix.ERANGE):
			size, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return "", fmt.Errorf("reading xattr %s: %w", name, err)
			}
			*buf = make([]byte, size+64)
		default:
			return "", fmt.Errorf("reading xattr %s: %w", name, err)
		}
	}
}

// CheckNames walks the tree at root (an overlay upper or layer directory; links
// are not followed) and refuses, as Writer would, the first file whose name is
// reserved for whiteouts. A step's tree is checked when it is committed, so the
// error is the step's even when its blob is made much later, or never.
func CheckNames(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return checkName(filepath.ToSlash(rel))
	})
}
