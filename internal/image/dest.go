package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/store"
)

// stdout is where a destination of "-" is written.
var stdout io.Writer = os.Stdout

// writeDest streams fn's output to dest:
//
//   - "-": to standard output;
//   - a path that is, or is a symlink to, anything but a regular file (a device
//     such as /dev/null, a fifo, /dev/stdout on a pipe or terminal): opened and
//     written in place;
//   - a symlink to a regular file (/dev/stdout redirected to a file, a link the
//     user made): written through the link, truncating, so the link stays;
//   - anything else (a regular file, or nothing yet): written to a uniquely
//     named temporary file beside dest, fsynced and renamed over dest, so dest
//     is either the old file or the complete new one. On error the temporary
//     file is removed.
func writeDest(dest string, fn func(io.Writer) error) error {
	if dest == "-" {
		return writeBuffered(stdout, fn)
	}
	lfi, lerr := os.Lstat(dest)
	if lerr == nil && lfi.IsDir() {
		return fmt.Errorf("%s is a directory", dest)
	}
	if lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(dest)
		if err == nil && fi.IsDir() {
			return fmt.Errorf("%s is a directory", dest)
		}
		flags := os.O_WRONLY
		if err == nil && fi.Mode().IsRegular() {
			flags |= os.O_TRUNC
		}
		return writeInPlace(dest, flags, fn)
	}
	if lerr == nil && !lfi.Mode().IsRegular() {
		return writeInPlace(dest, os.O_WRONLY, fn)
	}
	return writeReplacing(dest, lfi, fn)
}

func writeBuffered(w io.Writer, fn func(io.Writer) error) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := fn(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// writeInPlace opens dest (which exists) with flags and writes to it.
func writeInPlace(dest string, flags int, fn func(io.Writer) error) error {
	f, err := os.OpenFile(dest, flags, 0)
	if err != nil {
		return err
	}
	err = writeBuffered(f, fn)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeReplacing writes a temporary file beside dest and renames it over dest;
// old describes the regular file dest was (nil: none), whose mode is kept.
func writeReplacing(dest string, old fs.FileInfo, fn func(io.Writer) error) (err error) {
	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	mode := fs.FileMode(0o666) &^ umask()
	if old != nil {
		mode = old.Mode().Perm()
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := writeBuffered(f, fn); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	return store.SyncDir(dir)
}

// writeDirDest makes a directory output at dest: fn fills a temporary
// directory beside dest, which is then fsynced and put in place (atomically
// exchanged with an existing dest, which is then removed). An existing dest
// is replaced only if it is empty or looks like a previous output (isOutput
// says which); anything else is refused, so a mistyped dest cannot delete a
// directory of the user's.
func writeDirDest(dest string, isOutput func(dir string) bool, fn func(dir string) error) (err error) {
	if dest == "-" {
		return errors.New("a directory output cannot go to stdout (use a .tar dest)")
	}
	fi, lerr := os.Lstat(dest)
	switch {
	case lerr == nil && !fi.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dest)
	case lerr == nil && !isEmptyDir(dest) && !isOutput(dest):
		return fmt.Errorf("%s exists and is not an image layout; not replacing it", dest)
	case lerr != nil && !errors.Is(lerr, fs.ErrNotExist):
		return lerr
	}
	parent, base := filepath.Split(filepath.Clean(dest))
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o777&^umask()); err != nil {
		return err
	}
	if err := fn(tmp); err != nil {
		return err
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	if lerr != nil {
		if err := os.Rename(tmp, dest); err != nil {
			return err
		}
		return store.SyncDir(parent)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dest, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("swapping %s into place: %w", dest, err)
	}
	// tmp now holds the previous output.
	if err := store.SyncDir(parent); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}

func isEmptyDir(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// syncTree fsyncs every file and directory below and including dir.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// umask reads the process umask without changing it (changing it, even
// briefly, would race with files created by other goroutines).
func umask() fs.FileMode {
	data, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(m)
				}
			}
		}
	}
	return 0o022
}
