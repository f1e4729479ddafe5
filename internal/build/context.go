package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/slimbuild/slimbuild/internal/store"
)

// buildContext is the context directory, its .dockerignore and a stat cache
// that lets unchanged files keep their digest without being read again.
type buildContext struct {
	dir    string
	ignore *patternmatcher.PatternMatcher // nil when there is no .dockerignore

	cachePath string
	mu        sync.Mutex
	stats     map[string]statEntry
	dirty     bool
}

// statEntry is what the stat cache remembers of one file.
type statEntry struct {
	Size   int64
	Mtime  int64
	Ino    uint64
	Mode   uint32
	Digest string
}

func openContext(st *store.Store, dir, dockerfile string) (*buildContext, error) {
	c := &buildContext{dir: dir, stats: map[string]statEntry{}}
	ignorePath := filepath.Join(dir, ".dockerignore")
	// A Dockerfile-specific ignore file (Dockerfile.dockerignore) wins, as in BuildKit.
	if p := dockerfile + ".dockerignore"; fileExists(p) {
		ignorePath = p
	}
	if f, err := os.Open(ignorePath); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ignorePath, err)
		}
		if len(patterns) > 0 {
			pm, err := patternmatcher.New(patterns)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ignorePath, err)
			}
			c.ignore = pm
		}
	}
	sum := sha256.Sum256([]byte(dir))
	c.cachePath = filepath.Join(st.Root(), "statcache", hex.EncodeToString(sum[:12]))
	if data, err := os.ReadFile(c.cachePath); err == nil {
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&c.stats); err != nil {
			c.stats = map[string]statEntry{}
		}
	}
	return c, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// save writes the stat cache back when it changed (atomically).
func (c *buildContext) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(c.stats); err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(c.cachePath), 0o755); err != nil {
		return
	}
	tmp := c.cachePath + ".tmp-" + randomID()
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, c.cachePath); err != nil {
		os.Remove(tmp)
	}
	c.dirty = false
}

// excluded reports whether a context path (slash-separated, relative) is ignored.
func (c *buildContext) excluded(rel string) bool {
	if c.ignore == nil || rel == "" || rel == "." {
		return false
	}
	ok, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// skipDir reports whether an excluded directory can be skipped whole: only when no
// exception pattern could bring something under it back.
func (c *buildContext) skipDir(rel string) bool {
	if !c.excluded(rel) {
		return false
	}
	if !c.ignore.Exclusions() {
		return true
	}
	for _, p := range c.ignore.Patterns() {
		if !p.Exclusion() {
			continue
		}
		ps := p.String()
		if strings.HasPrefix(ps, rel+"/") || strings.ContainsAny(ps, "*?[") {
			return false
		}
	}
	return true
}

// resolve returns the host path of a context path, which must stay inside the context.
func (c *buildContext) resolve(p string) (string, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	if strings.HasPrefix(path.Clean(filepath.ToSlash(p)), "../") || path.Clean(filepath.ToSlash(p)) == ".." {
		return "", fmt.Errorf("%s: outside the build context", p)
	}
	hp, err := securejoin.SecureJoin(c.dir, clean)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return hp, nil
}

// fileDigest returns the sha256 of a context file, from the stat cache when the
// file has not changed since it was last read.
func (c *buildContext) fileDigest(hostPath string, fi fs.FileInfo) (string, error) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	e := statEntry{Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
	if st != nil {
		e.Ino = st.Ino
	}
	c.mu.Lock()
	old, ok := c.stats[hostPath]
	c.mu.Unlock()
	if ok && old.Size == e.Size && old.Mtime == e.Mtime && old.Ino == e.Ino && old.Mode == e.Mode {
		return old.Digest, nil
	}
	f, err := os.Open(hostPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", hostPath, err)
	}
	e.Digest = hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.stats[hostPath] = e
	c.dirty = true
	c.mu.Unlock()
	return e.Digest, nil
}

// digestTree hashes a context path (file or directory) for a bind mount's cache key.
func (c *buildContext) digestTree(p string) (string, error) {
	hp, err := c.resolve(p)
	if err != nil {
		return "", err
	}
	items := []srcItem{}
	fi, err := os.Stat(hp)
	if err != nil {
		return "", fmt.Errorf("bind mount source %s: %w", p, err)
	}
	items = append(items, srcItem{host: hp, rel: strings.TrimPrefix(path.Clean("/"+p), "/"), fi: fi})
	h := sha256.New()
	if err := c.hashItems(h, items); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashItems writes the identity of every file under items (after .dockerignore) to h:
// path, type, permission bits, size, content digest or link target.
func (c *buildContext) hashItems(h io.Writer, items []srcItem) error {
	for _, it := range items {
		err := walkItem(it, c, func(rel, host string, fi fs.FileInfo) error {
			mode := fi.Mode()
			fmt.Fprintf(h, "%s\x00%o\x00", rel, uint32(mode.Type())|uint32(mode.Perm())|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
			switch {
			case mode.IsRegular():
				d, err := c.fileDigest(host, fi)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "%d\x00%s\n", fi.Size(), d)
			case mode&fs.ModeSymlink != 0:
				t, err := os.Readlink(host)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "%s\n", t)
			default:
				fmt.Fprintf(h, "\n")
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
