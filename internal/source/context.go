package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
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
	"syscall"
	"unsafe"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/slimbuild/slimbuild/internal/runtime"
)

// Context is the context directory, its .dockerignore and a stat cache
// that lets unchanged files keep their digest without being read again.
type Context struct {
	dir    string
	prefix string                         // dir, cleaned, with a trailing separator: cut from stat cache keys
	ignore *patternmatcher.PatternMatcher // nil when there is no .dockerignore

	st        StatCache // keeps the stat cache
	cacheName string    // the stat cache's name in the store
	// loaded is closed once saved holds the stat cache read from st: it is
	// read and indexed while the build plans and walks the context.
	loaded chan struct{}
	saved  statTable
	mu     sync.Mutex
	stats  map[string]statEntry // what this build hashed
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
	Digest [sha256.Size]byte
}

// StatCache keeps a context's stat cache between builds, by name; the store
// satisfies it. A missing or unreadable cache is an error from StatCache and
// only costs the build some reading. The bytes StatCache returns become the
// Context's: the implementation must not change them afterwards.
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
	if c.prefix = filepath.Clean(dir); !strings.HasSuffix(c.prefix, string(filepath.Separator)) {
		c.prefix += string(filepath.Separator)
	}
	// A Dockerfile-specific ignore file (Dockerfile.dockerignore) wins, as in BuildKit.
	ignoreDir, ignoreName := filepath.Split(dockerfile + ".dockerignore")
	if !fileExists(dockerfile + ".dockerignore") {
		ignoreDir, ignoreName = dir, ".dockerignore"
	}
	ignorePath := filepath.Join(ignoreDir, ignoreName)
	if f, err := openIgnoreFile(ignoreDir, ignoreName); err != nil {
		return nil, fmt.Errorf("reading %s: %w", ignorePath, err)
	} else if f != nil {
		patterns, err := ignorefile.ReadAll(io.LimitReader(f, maxIgnoreFile))
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
			if t, ok := decodeStats(data); ok {
				c.saved = t
			}
		}
	}()
	return c, nil
}

// maxIgnoreFile bounds a .dockerignore (real ones are a few KiB).
const maxIgnoreFile = 16 << 20

// openIgnoreFile opens the ignore file name of dir, resolved inside dir (a
// symlink cannot make it a file of the host), or returns nil when there is none.
// The context may be hostile (a tar from standard input is unpacked with its
// FIFOs and devices): runtime.OpenInRoot reads only a regular file.
func openIgnoreFile(dir, name string) (*os.File, error) {
	f, err := runtime.OpenInRoot(dir, name, maxIgnoreFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return f, err
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
	encodeStats(&buf, c.saved, c.stats)
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

// fileDigest returns the sha256 of a context file (st is its lstat), from
// the stat cache when the file has not changed since it was last read: same
// size, mtime, ctime, device, inode and mode.
func (c *Context) fileDigest(hostPath string, st *syscall.Stat_t) ([sha256.Size]byte, error) {
	e := statEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Dev: st.Dev, Ino: st.Ino, Mode: uint32(fileMode(st.Mode))}
	// Keys are relative to the context directory (shorter to keep and to
	// load); a path outside it (never expected) keeps its whole name.
	key := strings.TrimPrefix(hostPath, c.prefix)
	<-c.loaded
	c.mu.Lock()
	old, ok := c.stats[key]
	c.mu.Unlock()
	if !ok {
		old, ok = c.saved.get(key)
	}
	if ok && old.Size == e.Size && old.Mtime == e.Mtime && old.Ctime == e.Ctime &&
		old.Dev == e.Dev && old.Ino == e.Ino && old.Mode == e.Mode {
		return old.Digest, nil
	}
	// What is read is what was lstat'd: not a symlink or a FIFO put in
	// its place since (that would read outside the context, or block).
	f, err := os.OpenFile(hostPath, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return e.Digest, err
	}
	defer f.Close()
	var fst syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
		return e.Digest, fmt.Errorf("%s: %w", hostPath, err)
	}
	if fst.Dev != st.Dev || fst.Ino != st.Ino || fst.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return e.Digest, fmt.Errorf("%s: replaced while the build context was read", hostPath)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return e.Digest, fmt.Errorf("reading %s: %w", hostPath, err)
	}
	h.Sum(e.Digest[:0])
	c.mu.Lock()
	c.stats[key] = e
	c.dirty = true
	c.mu.Unlock()
	return e.Digest, nil
}

// fileMode is the fs.FileMode of a stat mode, as os.Lstat reports it.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
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
// examined and hashed in parallel, while the walk goes on; what is written to h
// keeps the walk's order.
func (c *Context) hashItems(h io.Writer, items []Item) error {
	for _, it := range items {
		refs, err := c.examineWalk(it)
		if err != nil {
			return err
		}
		buf := make([]byte, 0, 256)
		for i := 0; i < refs.n; i++ {
			r := refs.at(i)
			if r.err != nil {
				return r.err
			}
			mode := r.mode
			buf = append(buf[:0], r.rel...)
			buf = append(buf, 0)
			buf = strconv.AppendUint(buf, uint64(uint32(mode.Type())|uint32(mode.Perm())|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))), 8)
			buf = append(buf, 0)
			switch {
			case mode.IsRegular():
				buf = strconv.AppendInt(buf, r.size, 10)
				buf = append(buf, 0)
				buf = hex.AppendEncode(buf, r.digest[:])
			case mode&fs.ModeSymlink != 0:
				buf = append(buf, r.link...)
			}
			buf = append(buf, '\n')
			if _, err := h.Write(buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// refBatch is how many walked entries go to the examining goroutines at a
// time; a walk shorter than one batch is examined without them.
const refBatch = 128

// examineWalk walks it and examines every entry kept (see examine). Batches
// of entries go to a few goroutines per core as the walk finds them, so the
// lstats and reads overlap the directory reads.
func (c *Context) examineWalk(it Item) (*refList, error) {
	refs := &refList{}
	var work chan []fileRef
	var wg sync.WaitGroup
	send := func(batch []fileRef) {
		if work == nil {
			work = make(chan []fileRef, 16)
			for w := 0; w < goruntime.NumCPU()*4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := range work {
						for i := range b {
							c.examine(&b[i], it)
						}
					}
				}()
			}
		}
		work <- batch
	}
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
		refs.add(fileRef{rel: rel, host: host, d: d})
		if refs.pending() == refBatch {
			send(refs.take())
		}
		return nil
	})
	switch {
	case work == nil && err != nil:
	case work == nil:
		// A short walk: examined here, no goroutines.
		for b := refs.take(); len(b) > 0; b = b[1:] {
			c.examine(&b[0], it)
		}
	default:
		if b := refs.take(); len(b) > 0 {
			send(b)
		}
		close(work)
		wg.Wait()
	}
	return refs, err
}

// examine fills in r's mode and size with one lstat into a stack buffer (no
// FileInfo kept per file), and a regular file's digest or a symlink's target.
// The item itself (r.d nil) has it.fi.
func (c *Context) examine(r *fileRef, it Item) {
	var st syscall.Stat_t
	if r.d == nil {
		sys, ok := sysStat(it.fi)
		if !ok {
			r.err = fmt.Errorf("%s: no stat information", r.host)
			return
		}
		st = *sys
	} else if err := syscall.Lstat(r.host, &st); err != nil {
		r.err = &fs.PathError{Op: "lstat", Path: r.host, Err: err}
		return
	}
	r.mode, r.size = fileMode(st.Mode), st.Size
	switch {
	case r.mode.IsRegular():
		r.digest, r.err = c.fileDigest(r.host, &st)
	case r.mode&fs.ModeSymlink != 0:
		r.link, r.err = os.Readlink(r.host)
	}
}

// fileRef is one walked context entry being hashed.
type fileRef struct {
	rel, host string
	d         fs.DirEntry
	mode      fs.FileMode
	size      int64
	digest    [sha256.Size]byte // a regular file's content
	link      string            // a symlink's target
	err       error
}

// refList holds a walk's entries in fixed-size chunks: a large context's
// list grows without copying (nor keeping) ever larger arrays, and an entry
// never moves once added, so goroutines can fill in what take handed them
// while add goes on.
type refList struct {
	chunks [][]fileRef
	n      int
	taken  int // entries handed out by take
}

// refChunk is a multiple of refBatch: a batch never spans two chunks.
const refChunk = 8 * refBatch

func (l *refList) add(r fileRef) {
	if l.n%refChunk == 0 {
		l.chunks = append(l.chunks, make([]fileRef, 0, refChunk))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, r)
	l.n++
}

// pending is how many entries were added since the last take.
func (l *refList) pending() int { return l.n - l.taken }

// take hands out the entries added since the last take; the caller must
// take at least every refBatch entries, so they are in one chunk.
func (l *refList) take() []fileRef {
	if l.taken == l.n {
		return nil
	}
	c := l.chunks[l.taken/refChunk]
	b := c[l.taken%refChunk : len(c) : len(c)]
	l.taken = l.n
	return b
}

func (l *refList) at(i int) *fileRef { return &l.chunks[i/refChunk][i%refChunk] }

// The stat cache file: a magic line, the number of entries (uvarint), then
// per entry the path relative to the context (its length as a uvarint, then
// the bytes), size, mtime, ctime, device, inode (uvarints), mode (4 bytes)
// and digest (32 bytes). A file of another version is ignored (and
// rewritten).
const statMagic = "slimbuild-stat-cache-3\n"

// minStatEntry is the smallest encoded entry: a one-byte path and its
// length, five one-byte varints, the mode and the digest.
const minStatEntry = 2 + 5 + 4 + sha256.Size

// statTable is a loaded stat cache file, indexed: an entry is decoded when
// it is looked up, so loading a large context's cache costs one small map
// (path to offset) and no allocation per entry.
type statTable struct {
	data  []byte            // the file after its header; never changed
	index map[string]uint32 // path (pointing into data) -> offset of its fields
}

// get returns the entry of path p.
func (t statTable) get(p string) (statEntry, bool) {
	off, ok := t.index[p]
	if !ok {
		return statEntry{}, false
	}
	e, _, ok := statFields(t.data[off:])
	return e, ok
}

// statFields decodes an entry's fields (after its path) from the start of
// data and returns what follows.
func statFields(data []byte) (statEntry, []byte, bool) {
	var v [5]uint64
	for i := range v {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			return statEntry{}, nil, false
		}
		v[i], data = x, data[n:]
	}
	if len(data) < 4+sha256.Size {
		return statEntry{}, nil, false
	}
	e := statEntry{Size: int64(v[0]), Mtime: int64(v[1]), Ctime: int64(v[2]), Dev: v[3], Ino: v[4], Mode: binary.LittleEndian.Uint32(data[:4])}
	copy(e.Digest[:], data[4:4+sha256.Size])
	return e, data[4+sha256.Size:], true
}

// encodeStats writes the entries of saved and stats (which wins) in the
// stat cache format.
func encodeStats(buf *bytes.Buffer, saved statTable, stats map[string]statEntry) {
	buf.WriteString(statMagic)
	var tmp [binary.MaxVarintLen64]byte
	uv := func(v uint64) { buf.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	put := func(p string, e statEntry) {
		uv(uint64(len(p)))
		buf.WriteString(p)
		uv(uint64(e.Size))
		uv(uint64(e.Mtime))
		uv(uint64(e.Ctime))
		uv(e.Dev)
		uv(e.Ino)
		binary.LittleEndian.PutUint32(tmp[:4], e.Mode)
		buf.Write(tmp[:4])
		buf.Write(e.Digest[:])
	}
	n := len(stats)
	for p := range saved.index {
		if _, ok := stats[p]; !ok {
			n++
		}
	}
	uv(uint64(n))
	for p := range saved.index {
		if _, ok := stats[p]; ok {
			continue
		}
		if e, ok := saved.get(p); ok {
			put(p, e)
		}
	}
	for p, e := range stats {
		put(p, e)
	}
}

// decodeStats checks and indexes encodeStats' format; ok is false for
// anything malformed, truncated or with trailing bytes. The table keeps
// data, and its paths point into it: the caller must not change data
// afterwards.
func decodeStats(data []byte) (statTable, bool) {
	if !bytes.HasPrefix(data, []byte(statMagic)) {
		return statTable{}, false
	}
	data = data[len(statMagic):]
	count, n := binary.Uvarint(data)
	if n <= 0 {
		return statTable{}, false
	}
	data = data[n:]
	// The count sizes the map; it cannot claim more entries than the bytes
	// hold, and offsets must fit the index.
	if count > uint64(len(data)/minStatEntry) || uint64(len(data)) > 1<<32-1 {
		return statTable{}, false
	}
	t := statTable{data: data, index: make(map[string]uint32, count)}
	rest := data
	for ; count > 0; count-- {
		plen, n := binary.Uvarint(rest)
		if n <= 0 || plen == 0 || uint64(len(rest)-n) < plen {
			return statTable{}, false
		}
		rest = rest[n:]
		p := unsafe.String(&rest[0], int(plen))
		rest = rest[plen:]
		off := len(data) - len(rest)
		var ok bool
		if _, rest, ok = statFields(rest); !ok {
			return statTable{}, false
		}
		t.index[p] = uint32(off)
	}
	if len(rest) != 0 {
		return statTable{}, false
	}
	return t, true
}
