package source

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// A COPY usually writes its layer straight from the sources: the overlay is only
// read, to resolve the destination and to give parent directories their metadata,
// and the files are streamed once into the layer tar without being written out.
// The layer's unpacked directory is made later, from the blob, only if a later
// step needs it. Cases where the layer would depend on what the files replace (a
// directory replaced by a file, a non-directory in the way of a directory) take the
// overlay path instead, where the kernel resolves them.

// DirectPlan is the tar a COPY writes: parents, then each source at its destination.
type DirectPlan struct {
	steps []directStep
}

type directStep struct {
	mkdir *dirEntry // a parent directory entry, or
	src   string    // a source written at dest
	dest  string    // relative, slash-separated, no leading slash
	skip  func(rel string) bool
	// contents writes a directory src's contents only: its own entry is a mkdir step.
	contents bool
}

type dirEntry struct {
	name  string
	perm  uint32
	owner layer.Owner
	mtime time.Time
}

// PlanDirect maps items onto the root mounted at view; ok is false when the copy
// must take the overlay path.
//
// A directory source copies its contents: the destination directory keeps its own
// owner and mode when it exists, and is created with mode 0755 (or --chmod's) owned
// by root (or --chown's owner) when it does not, as in BuildKit. The destination is
// resolved through the image's symlinks, its last element included.
func PlanDirect(view string, items []Item, dest string, destIsDir bool, own Owner, chmod fs.FileMode, hasChmod bool, bctx *Context) (*DirectPlan, bool, error) {
	p := &DirectPlan{}
	seen := map[string]bool{}
	now := time.Now()
	// parents emits entries for every directory from / down to dir (an image path
	// already resolved in the view), with the view's metadata where it exists.
	parents := func(dir string) (bool, error) {
		cur := ""
		for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
			if part == "" {
				continue
			}
			cur = path.Join(cur, part)
			if seen[cur] {
				continue
			}
			seen[cur] = true
			e := &dirEntry{name: cur, perm: 0o755, mtime: now}
			if hasChmod {
				e.perm = layer.UnixMode(chmod)
			}
			if own.set {
				e.owner = layer.Owner{UID: own.uid, GID: own.gid}
			}
			fi, err := os.Lstat(view + "/" + cur)
			switch {
			case err == nil && !fi.IsDir():
				return false, nil
			case err == nil:
				st, ok := fi.Sys().(*syscall.Stat_t)
				if !ok {
					return false, nil
				}
				e.perm = uint32(st.Mode & 0o7777)
				e.owner = layer.Owner{UID: int(st.Uid), GID: int(st.Gid)}
				e.mtime = fi.ModTime()
			case !os.IsNotExist(err):
				return false, err
			}
			p.steps = append(p.steps, directStep{mkdir: e})
		}
		return true, nil
	}
	// resolve follows the image's symlinks in an image path and returns the
	// resolved path (relative to the root, "" for the root itself).
	resolve := func(imagePath string) (string, error) {
		hp, err := inRoot(view, imagePath)
		if err != nil {
			return "", err
		}
		return strings.TrimPrefix(strings.TrimPrefix(hp, view), "/"), nil
	}
	for _, it := range items {
		if it.data != nil || it.url != "" {
			return nil, false, nil
		}
		if !it.filter.simple() {
			return nil, false, nil
		}
		var skip func(string) bool
		if bctx != nil && bctx.ignore != nil {
			if bctx.ignore.Exclusions() {
				return nil, false, nil
			}
			base := it.rel
			skip = func(rel string) bool { return bctx.excluded(path.Join(base, rel)) }
		}
		if f := it.filter; f != nil {
			prev := skip
			skip = func(rel string) bool { return (prev != nil && prev(rel)) || !f.keep(rel) }
		}
		target := dest
		if !it.fi.IsDir() {
			if !destIsDir {
				if hp, err := inRoot(view, dest); err == nil {
					if fi, err := os.Stat(hp); err == nil && fi.IsDir() {
						destIsDir = true
					}
				}
			}
			if destIsDir {
				target = path.Join(dest, path.Base("/"+it.rel))
			}
		}
		rel, err := resolve(target)
		if err != nil {
			return nil, false, err
		}
		if rel == "" {
			if !it.fi.IsDir() {
				return nil, false, nil
			}
			p.steps = append(p.steps, directStep{src: it.host, dest: "", skip: skip})
			continue
		}
		if ok, err := parents(path.Dir(rel)); err != nil || !ok {
			return nil, false, err
		}
		if fi, err := os.Lstat(view + "/" + rel); err == nil {
			// A directory over a non-directory, or anything over a directory
			// but a directory, is left to the overlay.
			if fi.IsDir() != it.fi.IsDir() {
				return nil, false, nil
			}
		}
		if !it.fi.IsDir() {
			p.steps = append(p.steps, directStep{src: it.host, dest: rel, skip: skip})
			continue
		}
		if !seen[rel] {
			seen[rel] = true
			top := &dirEntry{name: rel, perm: 0o755, mtime: now}
			if hasChmod {
				top.perm = layer.UnixMode(chmod)
			}
			if own.set {
				top.owner = layer.Owner{UID: own.uid, GID: own.gid}
			}
			if fi, err := os.Lstat(view + "/" + rel); err == nil {
				st, ok := fi.Sys().(*syscall.Stat_t)
				if !ok {
					return nil, false, nil
				}
				top.perm = uint32(st.Mode & 0o7777)
				top.owner = layer.Owner{UID: int(st.Uid), GID: int(st.Gid)}
				top.mtime = fi.ModTime()
			}
			p.steps = append(p.steps, directStep{mkdir: top})
		}
		p.steps = append(p.steps, directStep{src: it.host, dest: rel, skip: skip, contents: true})
	}
	return p, true, nil
}
