package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// privateMode is the mode of the store root and of every directory directly
// below it (blobs/, blobs/sha256/, layers/, mounts/, cache/, tmp/, ...): only
// the owner may list or traverse them. The root alone would suffice to keep
// other users out; the rest is a second line in case it is ever loosened.
// Docker's 0710 (group traversal for user namespaces) buys slimbuild nothing.
const privateMode fs.FileMode = 0o700

// storeDirs are the directories Open creates.
var storeDirs = []string{"blobs", "blobs/sha256", "layers", "snapshots", "cache", "tmp"}

// makePrivate creates the store's directories and makes the root and the
// directories below it privateMode, correcting stores made by earlier versions
// (0755). With the root closed, nothing inside is reachable by another user
// whatever its own mode: blobs, cache values, unpacked layers (which keep the
// layer's modes, setuid files and device nodes included) and build mounts.
//
// A root owned by another user is refused: that user could change anything
// in it, and the next build would ship it.
func (s *Store) makePrivate() error {
	if err := os.MkdirAll(s.root, privateMode); err != nil {
		return err
	}
	fi, err := os.Stat(s.root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", s.root)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", s.root, st.Uid, os.Geteuid())
	}
	if err := chmodPrivate(s.root, fi); err != nil {
		return err
	}
	for _, d := range storeDirs {
		if err := os.Mkdir(s.path(d), privateMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	var dirs []string
	for _, d := range storeDirs {
		dirs = append(dirs, s.path(d))
	}
	for _, e := range ents {
		if e.IsDir() && !slices.Contains(storeDirs, e.Name()) {
			dirs = append(dirs, filepath.Join(s.root, e.Name()))
		}
	}
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
		if err := chmodPrivate(d, fi); err != nil {
			return err
		}
	}
	return nil
}

// chmodPrivate sets p (described by fi) to privateMode if it is anything else.
func chmodPrivate(p string, fi fs.FileInfo) error {
	if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == privateMode {
		return nil
	}
	return os.Chmod(p, privateMode)
}
