package runmount

import (
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// Points are the mount points of a RUN: the image paths its container mounts
// something on, and what each of them and of their parents was before the RUN.
type Points struct {
	targets []string
	before  map[string]fs.FileInfo // nil: did not exist before the run
}

// RecordPoints records, before a RUN, what root (its mounted root filesystem)
// holds at each of targets and at their parents, resolved inside root.
func RecordPoints(root string, targets []string) (*Points, error) {
	pts := &Points{targets: targets, before: map[string]fs.FileInfo{}}
	for _, t := range targets {
		for p := t; p != "/" && p != "."; p = path.Dir(p) {
			if _, ok := pts.before[p]; ok {
				continue
			}
			hp, err := securejoin.SecureJoin(root, p)
			if err != nil {
				return nil, err
			}
			fi, err := os.Lstat(hp)
			if err != nil {
				fi = nil
			}
			pts.before[p] = fi
		}
	}
	return pts, nil
}

// Remove deletes, once the RUN is over and its root unmounted, the mount
// points its container left in upper, the RUN's upper directory (see
// removeMountPoints).
func (pts *Points) Remove(upper string) {
	removeMountPoints(upper, pts.targets, pts.before)
}

// removeMountPoints deletes, from the upper directory, what only exists there
// because something was mounted: the empty files and directories runc created as
// mount points, and the parents overlayfs copied up to hold them when nothing
// else changed in them (empty in the upper, not opaque, same mode and owner).
//
// The upper directory is the RUN's work: it may hold symlinks planted where the
// mount points' parents were. Every path is therefore resolved from a descriptor
// of upper with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and inspected and
// removed relative to its parent's descriptor, never by name from the host root;
// a path that does not resolve that way is left alone.
func removeMountPoints(upper string, targets []string, before map[string]fs.FileInfo) {
	root, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(root)
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, t := range targets {
		// The same walk as the one that filled before.
		for p := t; p != "/" && p != "."; p = path.Dir(p) {
			if !removeMountPoint(root, p, before[p]) {
				break
			}
		}
	}
}

// removeMountPoint removes the image path p from the upper directory open as
// root if it is a mount point left over (see removeMountPoints); old is what p
// was before the run (nil: nothing). It reports whether p was removed.
func removeMountPoint(root int, p string, old fs.FileInfo) bool {
	p = path.Clean("/" + p)
	if p == "/" {
		return false
	}
	parent, err := layer.OpenBeneath(root, strings.TrimPrefix(path.Dir(p), "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	defer unix.Close(parent)
	name := path.Base(p)
	var st unix.Stat_t
	if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	flags := 0
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		empty, opaque, err := inspectDir(parent, name)
		if err != nil || !empty {
			return false
		}
		if old != nil && !sameDir(old, &st, opaque) {
			return false
		}
		flags = unix.AT_REMOVEDIR
	case old != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > 0:
		return false
	}
	return unix.Unlinkat(parent, name, flags) == nil
}

// inspectDir reports whether the directory name under parent is empty and
// whether it is overlay-opaque.
func inspectDir(parent int, name string) (empty, opaque bool, err error) {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, false, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if v, err := unix.Fgetxattr(fd, "trusted.overlay.opaque", make([]byte, 8)); err == nil && v > 0 {
		opaque = true
	}
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return false, false, err
	}
	return len(names) == 0, opaque, nil
}

// sameDir reports whether a copied-up directory (cur, opaque or not) is
// unchanged from the one below (old).
func sameDir(old fs.FileInfo, cur *unix.Stat_t, opaque bool) bool {
	if !old.IsDir() || opaque {
		return false
	}
	ost, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return ost.Mode == cur.Mode && ost.Uid == cur.Uid && ost.Gid == cur.Gid
}
