package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Context is the context directory, its .dockerignore and a stat cache
// that lets unchanged files keep their digest without being read again.
type Context struct {
	dir    string
	ignore *patternmatcher.PatternMatcher // nil when there is no .dockerignore

	st        StatCache // keeps the stat cache
	cacheName string    // the stat cache's name in the store
	// loaded is closed once stats holds the stat cache read from st: it is
	// read and decoded while the build plans and walks the context.
	loaded chan struct{}
	mu     sync.Mutex
	stats  map[string]statEntry
	dirty  bool
}

// statEntry is what the stat cache remembers of one file. Ctime is there
// because an edit can put mtime back (touch -d, tar, rsync): ctime cannot be
// set, so any change to the file since it was hashed changes it.
type statEntry struct {
	Size   int64
	Mtime  int64
	Ctime  int64
	Dev    uint64
	Ino    uint64
	Mode   uint32
	Digest string
}

// StatCache keeps a context's stat cache between builds, by name; the store
// satisfies it. A missing or unreadable cache is an error from StatCache and
// only costs the build some reading.
type StatCache interface {
	StatCache(name string) ([]byte, error)
	PutStatCache(name string, data []byte) error
}

// TempDirs makes private temporary directories; the store satisfies it.
type TempDirs interface {
	TempDir(prefix string) (string, error)
}

// OpenContext opens the context directory dir: its .dockerignore (or the
// dockerfile's own NAME.dockerignore) and the stat cache that st keeps for it.
func OpenContext(st StatCache, dir, dockerfile string) (*Context, error) {
	c := &Context{dir: dir, stats: map[string]statEntry{}, loaded: make(chan struct{})}
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
	c.st, c.cacheName = st, hex.EncodeToString(sum[:12])
	go func() {
		defer close(c.loaded)
		if data, err := st.StatCache(c.cacheName); err == nil {
			if stats, ok := decodeStats(data); ok {
				c.stats = stats
			}
		}
	}()
	return c, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Dir is the context directory.
func (c *Context) Dir() string { return c.dir }

// Save writes the stat cache back when it changed (atomically).
func (c *Context) Save() {
	<-c.loaded
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return
	}
	var buf bytes.Buffer
	encodeStats(&buf, c.stats)
	// A stat cache that cannot be saved only costs the next build some reading.
	if c.st.PutStatCache(c.cacheName, buf.Bytes()) == nil {
		c.dirty = false
	}
}

// excluded reports whether a context path (slash-separated, relative) is ignored.
func (c *Context) excluded(rel string) bool {
	if c.ignore == nil || rel == "" || rel == "." {
		return false
	}
	ok, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// skipDir reports whether an excluded directory can be skipped whole: only when no
// exception pattern could bring something under it back.
func (c *Context) skipDir(rel string) bool {
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

// Resolve returns the host path of a context path, which must stay inside the context.
func (c *Context) Resolve(p string) (string, error) {
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
func (c *Context) fileDigest(hostPath string, fi fs.FileInfo) (string, error) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	e := statEntry{Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode())}
	if st == nil {
		return "", fmt.Errorf("%s: no stat information", hostPath)
	}
	e.Ctime, e.Dev, e.Ino = st.Ctim.Nano(), st.Dev, st.Ino
	<-c.loaded
	c.mu.Lock()
	old, ok := c.stats[hostPath]
	c.mu.Unlock()
	if ok && old.Size == e.Size && old.Mtime == e.Mtime && old.Ctime == e.Ctime &&
		old.Dev == e.Dev && old.Ino == e.Ino && old.Mode == e.Mode {
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

// DigestTree hashes a context path (file or directory) for a bind mount's cache key.
func (c *Context) DigestTree(p string) (string, error) {
	hp, err := c.Resolve(p)
	if err != nil {
		return "", err
	}
	items := []Item{}
	fi, err := os.Stat(hp)
	if err != nil {
		return "", fmt.Errorf("bind mount source %s: %w", p, err)
	}
	items = append(items, Item{host: hp, rel: strings.TrimPrefix(path.Clean("/"+p), "/"), fi: fi})
	h := sha256.New()
	if err := c.hashItems(h, items); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashItems writes the identity of every file under items (after .dockerignore) to h:
// path, type, permission bits, size, content digest or link target. Files are
// examined and hashed in parallel; what is written to h keeps the walk's order.
func (c *Context) hashItems(h io.Writer, items []Item) error {
	for _, it := range items {
		var refs []fileRef
		err := walkEntries(it, c, func(rel, host string, d fs.DirEntry) error {
			// What COPY --exclude or --parents leaves out is not part of the key;
			// directories stay, as they may be made for what is under them.
			if d != nil && !it.filter.keep(rel) {
				if d.IsDir() && it.filter.prune(rel) {
					return fs.SkipDir
				}
				if !d.IsDir() {
					return nil
				}
			}
			refs = append(refs, fileRef{rel: rel, host: host, d: d})
			return nil
		})
		if err != nil {
			return err
		}
		parallel(len(refs), func(i int) {
			r := &refs[i]
			if r.d == nil {
				r.fi = it.fi
			} else if r.fi, r.err = r.d.Info(); r.err != nil {
				return
			}
			switch mode := r.fi.Mode(); {
			case mode.IsRegular():
				r.sum, r.err = c.fileDigest(r.host, r.fi)
			case mode&fs.ModeSymlink != 0:
				r.sum, r.err = os.Readlink(r.host)
			}
		})
		buf := make([]byte, 0, 256)
		for _, r := range refs {
			if r.err != nil {
				return r.err
			}
			mode := r.fi.Mode()
			buf = append(buf[:0], r.rel...)
			buf = append(buf, 0)
			buf = strconv.AppendUint(buf, uint64(uint32(mode.Type())|uint32(mode.Perm())|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))), 8)
			buf = append(buf, 0)
			if mode.IsRegular() {
				buf = strconv.AppendInt(buf, r.fi.Size(), 10)
				buf = append(buf, 0)
			}
			buf = append(buf, r.sum...)
			buf = append(buf, '\n')
			if _, err := h.Write(buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileRef is one walked context entry being hashed.
type fileRef struct {
	rel, host string
	d         fs.DirEntry
	fi        fs.FileInfo
	sum       string // content digest, or link target
	err       error
}

// parallel calls fn(0..n-1) on a few goroutines per core.
func parallel(n int, fn func(i int)) {
	workers := min(goruntime.NumCPU()*4, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// The stat cache file: a magic line, then per entry the path length (uvarint), the
// path, size, mtime, ctime, device, inode (uvarints), mode (4 bytes) and digest
// (32 bytes). A file of another version is ignored (and rewritten).
const statMagic = "slimbuild-stat-cache-2\n"

func encodeStats(buf *bytes.Buffer, stats map[string]statEntry) {
	buf.WriteString(statMagic)
	var tmp [binary.MaxVarintLen64]byte
	uv := func(v uint64) { buf.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	for p, e := range stats {
		sum, err := hex.DecodeString(e.Digest)
		if err != nil || len(sum) != 32 {
			continue
		}
		uv(uint64(len(p)))
		buf.WriteString(p)
		uv(uint64(e.Size))
		uv(uint64(e.Mtime))
		uv(uint64(e.Ctime))
		uv(e.Dev)
		uv(e.Ino)
		binary.LittleEndian.PutUint32(tmp[:4], e.Mode)
		buf.Write(tmp[:4])
		buf.Write(sum)
	}
}

// decodeStats reads encodeStats' format; ok is false for anything malformed.
func decodeStats(data []byte) (map[string]statEntry, bool) {
	if !bytes.HasPrefix(data, []byte(statMagic)) {
		return nil, false
	}
	data = data[len(statMagic):]
	// An entry is at least its 36-byte mode and digest and six varints;
	// sizing the map for that many saves rehashing a large context's map.
	stats := make(map[string]statEntry, len(data)/48)
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(data)
		if n <= 0 {
			return 0, false
		}
		data = data[n:]
		return v, true
	}
	for len(data) > 0 {
		n, ok := uv()
		if !ok || uint64(len(data)) < n {
			return nil, false
		}
		p := string(data[:n])
		data = data[n:]
		size, ok1 := uv()
		mtime, ok2 := uv()
		ctime, ok3 := uv()
		dev, ok4 := uv()
		ino, ok5 := uv()
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || len(data) < 36 {
			return nil, false
		}
		e := statEntry{Size: int64(size), Mtime: int64(mtime), Ctime: int64(ctime), Dev: dev, Ino: ino, Mode: binary.LittleEndian.Uint32(data[:4])}
		e.Digest = hex.EncodeToString(data[4:36])
		data = data[36:]
		stats[p] = e
	}
	return stats, true
}
