package store

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
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Durability: everything the store publishes is on disk before the rename that
// makes it visible, and the directory holding the new name is synced after it, so
// a power loss leaves either the old state or the new one, never a name pointing
// at missing or partial content.
//
// Single files (blobs, cache values, index.json) are fsynced. An unpacked layer
// directory can hold thousands of files, and one fsync costs a journal commit
// (about 3 ms here; 2000 small files took 6 to 11 s), so the whole filesystem is
// flushed with one syncfs(2) instead (about 60 to 100 ms for the same tree). But a
// syncfs also waits for whatever every other process left dirty on the filesystem
// (0.05 to 0.6 s on a busy machine, against 1 to 10 ms for fsyncing a file and its
// directory), so a small tree, such as most RUN steps leave, gets its files and
// directories fsynced one by one instead (syncTree).

// syncHook, set by tests, is told of every sync: ("file", path), ("dir", path)
// or ("fs", root), just after it succeeded.
var syncHook func(kind, path string)

func synced(kind, path string) {
	if syncHook != nil {
		syncHook(kind, path)
	}
}

// syncFile flushes f's data and metadata to disk.
func syncFile(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %q: %w", f.Name(), err)
	}
	synced("file", f.Name())
	return nil
}

// SyncDir flushes a directory's entries (a rename or create in it) to disk.
func SyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing directory %q: %w", dir, err)
	}
	defer unix.Close(fd)
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("syncing directory %q: %w", dir, err)
	}
	synced("dir", dir)
	return nil
}

// syncFS flushes the filesystem holding the store (syncfs(2)): used before a
// directory tree is renamed into place.
func (s *Store) syncFS() error {
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing store filesystem: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing store filesystem: %w", err)
	}
	synced("fs", s.root)
	return nil
}

// smallTree is the most entries a tree may hold for syncTree to fsync them one by
// one rather than sync the whole filesystem.
const smallTree = 16

// errBigTree stops the count of a tree's entries.
var errBigTree = errors.New("more than smallTree entries")

// syncTree makes the tree at dir (on the store's filesystem) durable: each regular
// file and directory fsynced when it holds at most smallTree entries, the whole
// filesystem synced otherwise. Other entries (symlinks, devices, whiteouts) are
// inodes that the directory syncs commit with their names. The tree may be
// hostile (what a RUN step left): nothing is opened through a symlink or outside
// dir, and FIFOs and devices are never opened.
func (s *Store) syncTree(dir string) error {
	var files, dirs []string
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > smallTree {
			return errBigTree
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case d.Type().IsRegular():
			files = append(files, rel)
		}
		return nil
	})
	if errors.Is(err, errBigTree) {
		if err := s.syncFS(); err != nil {
			return err
		}
		synced("tree", dir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("syncing %q: %w", dir, err)
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncing %q: %w", dir, err)
	}
	defer unix.Close(root)
	// Files first, then directories deepest first, so that each name is synced
	// after what it names.
	for i := len(dirs) - 1; i >= 0; i-- {
		files = append(files, dirs[i])
	}
	for _, rel := range files {
		if err := fsyncBeneath(root, rel); err != nil {
			return fmt.Errorf("syncing %q: %w", filepath.Join(dir, rel), err)
		}
		synced("file", filepath.Join(dir, rel))
	}
	synced("tree", dir)
	return nil
}

// fsyncBeneath fsyncs rel, resolved beneath the directory root without following
// any symlink; rel must name a regular file or a directory (O_NONBLOCK: a FIFO
// swapped in meanwhile does not block the open).
func fsyncBeneath(root int, rel string) error {
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFREG && m != unix.S_IFDIR {
		return fmt.Errorf("not a regular file or directory (mode %o)", st.Mode)
	}
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}

// Write-behind. A step that writes much (a RUN that leaves hundreds of MB) would
// leave all of it for the syncfs of its commit: the kernel starts writing dirty
// pages back only after 30 s, or once 10 % of memory is dirty, so on a large
// machine nothing is on disk when the step ends and the commit waits for all of it
// (0.5 s for 600 MB here). WriteBehind flushes the store's filesystem while the
// step runs, whenever enough is dirty, so that the writes go to disk beside the
// step's own work and the commit's sync finds little left.

// writeBehindEvery is how often WriteBehind looks at how much is dirty, and
// writeBehindDirty how much must be (bytes, the whole machine's) for it to flush.
var (
	writeBehindEvery       = 250 * time.Millisecond
	writeBehindDirty int64 = 64 << 20
)

// WriteBehind flushes the store's filesystem in the background (syncfs) each time
// more than writeBehindDirty bytes are dirty, until stop is called; stop waits for
// a flush in progress. A flush that fails is not reported: the commit's own sync,
// which must follow, reports it.
func (s *Store) WriteBehind() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(writeBehindEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if n, err := dirtyBytes(); err == nil && n >= writeBehindDirty {
				_ = s.syncFS()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

// dirtyBytes is how much of the page cache is dirty or being written back, the
// "Dirty:" and "Writeback:" lines of /proc/meminfo.
func dirtyBytes() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseDirty(f)
}

// parseDirty sums the Dirty and Writeback lines of a meminfo file (kB) in bytes.
func parseDirty(r io.Reader) (int64, error) {
	var n int64
	seen := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "Dirty" && name != "Writeback") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("meminfo: malformed %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("meminfo: malformed %s line %q", name, sc.Text())
		}
		n += kb << 10
		seen++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if seen != 2 {
		return 0, errors.New("meminfo: no Dirty and Writeback lines")
	}
	return n, nil
}
