package runmount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// cacheDir returns the directory of a cache mount, made on first use with m's
// owner and mode (root, 0755 by default), and the lock it holds for the RUN:
// shared (the default) takes a shared lock, locked an exclusive one and waits
// for it, and private takes the first instance of the cache that no other RUN
// holds, as BuildKit's sharing modes do. As in BuildKit, a different owner or
// mode is a different cache.
func (r *Mounter) cacheDir(ctx context.Context, m *instructions.Mount, target string) (string, func(), error) {
	id := m.CacheID
	if id == "" {
		id = path.Clean(target)
	}
	name := id
	if o := fileOpts(m); o != "" {
		name += "\x00" + o
	}
	if m.From != "" || m.Source != "" {
		// As in BuildKit, a cache seeded from a source is its own cache,
		// one per content of that source.
		seed, err := r.cacheSeedName(ctx, m)
		if err != nil {
			return "", nil, err
		}
		name += "\x00" + seed
	}
	sum := sha256.Sum256([]byte(name))
	base := filepath.Join(r.cfg.CacheDir, hex.EncodeToString(sum[:16]))
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return "", nil, err
	}
	for i := 0; ; i++ {
		dir := base
		if i > 0 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		how := unix.LOCK_SH
		switch m.CacheSharing {
		case instructions.MountSharingLocked:
			how = unix.LOCK_EX
		case instructions.MountSharingPrivate:
			how = unix.LOCK_EX | unix.LOCK_NB
		}
		unlock, err := lockFile(ctx, dir+".lock", how)
		if errors.Is(err, unix.EWOULDBLOCK) {
			continue // private: this instance is in use, try the next
		}
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		if err := r.makeCacheDir(ctx, dir, m); err != nil {
			unlock()
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		return dir, unlock, nil
	}
}

// makeCacheDir makes dir with m's owner and mode unless it exists, seeded
// with the content of m's from= and source= when given.
func (r *Mounter) makeCacheDir(ctx context.Context, dir string, m *instructions.Mount) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return err
	}
	uid, gid, mode := fileOwner(m, 0o755)
	if err := os.Lchown(tmp, uid, gid); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := unix.Chmod(tmp, mode); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if m.From != "" {
		if err := r.seedCache(ctx, tmp, m); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Lstat(dir); serr == nil {
			return nil // made by another RUN meanwhile
		}
		return err
	}
	return nil
}

// cacheSeedName is what a cache mount's from= and source= add to its name:
// the source's identity and, for a local-directory named context, the digest
// of the directory it seeds from.
func (r *Mounter) cacheSeedName(ctx context.Context, m *instructions.Mount) (string, error) {
	src := path.Clean("/" + m.Source)
	t, err := r.cfg.Sources.Tree(ctx, m.From)
	if err != nil {
		return "", err
	}
	sum, err := t.Key(m.Source)
	if err != nil {
		return "", err
	}
	if t.Local() {
		return "from=dir:" + sum + "\x00source=" + src, nil
	}
	return "from=" + sum + "\x00source=" + src, nil
}

// seedCache copies the directory that m's source= names in its from= (a
// stage, an image or a named context) into dir, a new cache.
func (r *Mounter) seedCache(ctx context.Context, dir string, m *instructions.Mount) error {
	t, err := r.cfg.Sources.Tree(ctx, m.From)
	if err != nil {
		return err
	}
	if err := t.CopyDir(m.Source, dir); err != nil {
		return fmt.Errorf("cache mount from=%s,source=%s: %w", m.From, m.Source, err)
	}
	return nil
}

// lockFile flocks the file p (created when missing) with how and returns its
// unlock. A blocking lock is waited for in steps so that ctx can end the wait;
// with LOCK_NB a held lock is unix.EWOULDBLOCK.
func lockFile(ctx context.Context, p string, how int) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || how&unix.LOCK_NB != 0 {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
