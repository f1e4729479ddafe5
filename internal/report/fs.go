package report

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// This file models the union filesystem of an image: each layer's tar is scanned once into
// metadata-only entries (contents are only sniffed: the first bytes for ELF and private-key
// magic), then applied on a tree with OCI whiteout semantics, counting every copy of a
// file that ends up invisible.

const (
	kindReg byte = iota + 1
	kindDir
	kindSymlink
	kindHardlink
	kindOther
)

const (
	flagELF        uint8 = 1 << iota // starts with \x7fELF
	flagPrivateKey                   // holds a PEM private key
	flagCapability                   // carries security.capability
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	capabilityPAX  = "SCHILY.xattr.security.capability"
	maxSymlinkHops = 40
	sniffSize      = 512
	keyScanSize    = 64 << 10
)

// entry is one tar entry of a layer, without contents.
type entry struct {
	path     string // cleaned, relative, no leading slash
	kind     byte
	mode     int64
	size     int64 // regular files only
	linkname string
	flags    uint8
}

// layerScan is what one pass over a layer tar yields.
type layerScan struct {
	entries   []entry
	whiteouts []string // paths removed from lower layers
	opaques   []string // directories whose lower contents are hidden
	bytes     int64    // uncompressed stream length
	files     int
	filesSize int64
	tarEnts   int
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cleanPath turns a tar name into a relative slash path inside the root ("" is the root).
func cleanPath(name string) string {
	p := path.Clean("/" + strings.ReplaceAll(name, "\\", "/"))
	return strings.TrimPrefix(p, "/")
}

// scanLayer reads an uncompressed layer tar from r to its end. It keeps only metadata and a
// few sniffed flags, so memory is bounded by the number of entries, not their size.
func scanLayer(r io.Reader) (*layerScan, error) {
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	ls := &layerScan{}
	buf := make([]byte, keyScanSize)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar entry %d: %w", ls.tarEnts, err)
		}
		ls.tarEnts++
		p := cleanPath(hdr.Name)
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if base == opaqueMarker {
			ls.opaques = append(ls.opaques, dir)
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			if target := base[len(whiteoutPrefix):]; target != "" && target != "." && target != ".." {
				ls.whiteouts = append(ls.whiteouts, path.Join(dir, target))
			}
			continue
		}
		e := entry{path: p, mode: hdr.Mode}
		switch hdr.Typeflag {
		case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
			e.kind = kindReg
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeSymlink:
			e.kind, e.linkname = kindSymlink, hdr.Linkname
		case tar.TypeLink:
			e.kind, e.linkname = kindHardlink, cleanPath(hdr.Linkname)
		case tar.TypeXGlobalHeader:
			continue
		default:
			e.kind = kindOther
		}
		if _, ok := hdr.PAXRecords[capabilityPAX]; ok {
			e.flags |= flagCapability
		}
		if e.kind == kindReg {
			e.size = max(hdr.Size, 0)
			ls.files++
			ls.filesSize += e.size
			want := int64(sniffSize)
			if keyContainerName(base) {
				want = keyScanSize
			}
			n, err := io.ReadFull(tr, buf[:min(want, e.size)])
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("reading %q: %w", hdr.Name, err)
			}
			e.flags |= sniff(buf[:n], want == keyScanSize)
		}
		ls.entries = append(ls.entries, e)
	}
	// Count the trailer and any padding after it, so the size is the whole stream's.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("reading tar trailer: %w", err)
	}
	ls.bytes = cr.n
	return ls, nil
}

var elfMagic = []byte("\x7fELF")

// sniff flags file contents: ELF magic, and a PEM private key at the start of the file (or,
// when anywhere is set for files named like key containers, at the start of any line).
func sniff(b []byte, anywhere bool) uint8 {
	var f uint8
	if bytes.HasPrefix(b, elfMagic) {
		f |= flagELF
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	if isPrivateKeyLine(t) {
		f |= flagPrivateKey
	} else if anywhere {
		for _, line := range bytes.Split(t, []byte("\n")) {
			if isPrivateKeyLine(line) {
				f |= flagPrivateKey
				break
			}
		}
	}
	return f
}

// isPrivateKeyLine reports whether b starts with a PEM "-----BEGIN … PRIVATE KEY" line.
func isPrivateKeyLine(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("-----BEGIN ")) {
		return false
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.Contains(b, []byte("PRIVATE KEY"))
}

// keyContainerName reports whether a file name suggests it may hold a private key after
// other PEM blocks, so that more of it is read.
func keyContainerName(base string) bool {
	switch path.Ext(base) {
	case ".pem", ".key", ".p8", ".crt":
		return true
	}
	return strings.HasPrefix(base, "id_") && !strings.HasSuffix(base, ".pub")
}

// node is a path in the union filesystem.
type node struct {
	name     string
	parent   *node
	children map[string]*node
	kind     byte
	mode     int64
	size     int64
	linkname string
	layer    int
	flags    uint8
	explicit bool // has its own tar entry (implicit parents do not)
}

func (n *node) isDir() bool { return n.kind == kindDir }

// path returns the absolute path of n.
func (n *node) path() string {
	if n.parent == nil {
		return "/"
	}
	var parts []string
	for c := n; c.parent != nil; c = c.parent {
		parts = append(parts, c.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}

// unionFS is the filesystem being assembled, with the accounting of hidden copies.
type unionFS struct {
	root        *node
	hiddenSize  int64
	hiddenCount int
	hiddenBy    []int64 // hidden bytes by layer index
	hidden      *topFiles
	// slab is where newNode takes nodes from: a layer's entries come in
	// thousands, and one allocation per node was most of the cost of a merge.
	slab []node
	// lastDir is the directory dirOf returned last, found at lastPath.
	lastDir  *node
	lastPath string
}

func newUnionFS(layers, top int) *unionFS {
	return &unionFS{
		root:     &node{kind: kindDir, mode: 0o755, children: map[string]*node{}},
		hiddenBy: make([]int64, layers),
		hidden:   newTopFiles(top),
	}
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolve looks p up, following symlinks in every component (and in the last one when
// followLast is set) within the image root. It returns nil if p does not exist or a link
// chain is too long.
func (u *unionFS) resolve(p string, followLast bool) *node {
	return u.resolveFrom(u.root, splitPath(p), followLast)
}

func (u *unionFS) resolveFrom(cur *node, rest []string, followLast bool) *node {
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		if c == "." || c == "" {
			continue
		}
		if !cur.isDir() {
			return nil
		}
		n := cur.children[c]
		if n == nil {
			return nil
		}
		if n.kind == kindSymlink && (len(rest) > 0 || followLast) {
			if hops++; hops > maxSymlinkHops {
				return nil
			}
			if strings.HasPrefix(n.linkname, "/") {
				cur = u.root
			}
			rest = append(splitPath(n.linkname), rest...)
			continue
		}
		cur = n
	}
	return cur
}

// lookupParent finds the directory that holds p (following symlinks in its parents) and
// p's last component, or nil if the parent does not exist.
func (u *unionFS) lookupParent(p string) (*node, string) {
	dir, base := path.Split(p)
	d := u.resolve(dir, true)
	if d == nil || !d.isDir() {
		return nil, ""
	}
	return d, base
}

// mkdirAll returns the directory p, creating missing components as implicit directories and
// replacing non-directories in the way (whose copies become hidden).
func (u *unionFS) mkdirAll(p string, layer int) *node {
	cur := u.root
	for _, c := range splitPath(p) {
		if c == ".." {
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		n := cur.children[c]
		if n != nil && n.kind == kindSymlink {
			if t := u.resolveFrom(cur, []string{c}, true); t != nil && t.isDir() {
				cur = t
				continue
			}
		}
		if n != nil && n.isDir() {
			cur = n
			continue
		}
		if n != nil {
			u.hide(n)
		}
		n = u.newNode(node{name: c, parent: cur, kind: kindDir, mode: 0o755, layer: layer, children: map[string]*node{}})
		cur.children[c] = n
		cur = n
	}
	return cur
}

func (u *unionFS) newNode(n node) *node {
	if len(u.slab) == 0 {
		u.slab = make([]node, 256)
	}
	p := &u.slab[0]
	*p = n
	u.slab = u.slab[1:]
	return p
}

// dirOf is mkdirAll(dir, layer) for an entry's directory. Entries of one
// directory come together in a tar, so the directory found last is kept and
// taken again while it still hangs where it was found: a directory reached
// through no symlink whose every ancestor is still its parent's child under its
// name is what a new lookup of the same path would return.
func (u *unionFS) dirOf(dir string, layer int) *node {
	if d := u.lastDir; d != nil && dir == u.lastPath && attached(d) {
		return d
	}
	d := u.mkdirAll(dir, layer)
	u.lastDir, u.lastPath = nil, ""
	if d.path() == "/"+strings.TrimSuffix(dir, "/") {
		u.lastDir, u.lastPath = d, dir
	}
	return d
}

// attached reports whether n is still in the tree: each of its ancestors holds
// it, or its ancestor, under its name.
func attached(n *node) bool {
	for ; n.parent != nil; n = n.parent {
		if n.parent.children[n.name] != n {
			return false
		}
	}
	return true
}

// hide removes n and everything under it, counting each regular file as a hidden copy.
func (u *unionFS) hide(n *node) {
	if n.parent != nil && n.parent.children[n.name] == n {
		delete(n.parent.children, n.name)
	}
	u.hideWalk(n, n.path())
}

func (u *unionFS) hideWalk(n *node, p string) {
	if n.kind == kindReg {
		u.hiddenSize += n.size
		u.hiddenCount++
		if n.layer >= 0 && n.layer < len(u.hiddenBy) {
			u.hiddenBy[n.layer] += n.size
		}
		u.hidden.add(File{Path: p, Size: n.size, Layer: n.layer})
	}
	for _, c := range n.children { // in any order: what is counted does not depend on it
		u.hideWalk(c, p+"/"+c.name)
	}
}

// apply lays one scanned layer over the filesystem: whiteouts and opaque markers hide what
// lower layers hold (never what this layer adds), then entries are added in archive order.
func (u *unionFS) apply(layer int, ls *layerScan) {
	for _, w := range ls.whiteouts {
		if d, base := u.lookupParent(w); d != nil {
			if n := d.children[base]; n != nil {
				u.hide(n)
			}
		}
	}
	for _, o := range ls.opaques {
		if d := u.resolve(o, true); d != nil && d.isDir() {
			for _, c := range d.children {
				u.hide(c)
			}
		}
	}
	for _, e := range ls.entries {
		u.insert(layer, e)
	}
}

func (u *unionFS) insert(layer int, e entry) {
	dir, base := path.Split(e.path)
	parent := u.dirOf(dir, layer)
	if base == "" {
		return
	}
	existing := parent.children[base]
	if existing != nil && existing.isDir() && e.kind == kindDir {
		existing.mode, existing.layer, existing.flags, existing.explicit = e.mode, layer, e.flags, true
		return
	}
	if existing != nil {
		u.hide(existing)
	}
	n := u.newNode(node{name: base, parent: parent, kind: e.kind, mode: e.mode, size: e.size,
		linkname: e.linkname, layer: layer, flags: e.flags, explicit: true})
	if e.kind == kindDir {
		n.children = map[string]*node{}
	}
	parent.children[base] = n
}

// topFiles keeps the n largest files seen, largest first, ties by path.
type topFiles struct {
	n     int
	files []File
}

func newTopFiles(n int) *topFiles { return &topFiles{n: n} }

func fileLess(a, b File) bool {
	if a.Size != b.Size {
		return a.Size > b.Size
	}
	if a.Path != b.Path {
		return a.Path < b.Path
	}
	return a.Layer < b.Layer
}

func (t *topFiles) add(f File) {
	if t.n <= 0 {
		return
	}
	if len(t.files) == t.n && !fileLess(f, t.files[len(t.files)-1]) {
		return
	}
	i := sort.Search(len(t.files), func(i int) bool { return fileLess(f, t.files[i]) })
	t.files = append(t.files, File{})
	copy(t.files[i+1:], t.files[i:])
	t.files[i] = f
	if len(t.files) > t.n {
		t.files = t.files[:t.n]
	}
}

// shrink keeps the n largest files (none when n <= 0) and at most n from now on;
// it never grows the list, which holds no more than it kept.
func (t *topFiles) shrink(n int) {
	t.n = min(t.n, max(n, 0))
	t.files = t.files[:min(len(t.files), t.n)]
}

func (t *topFiles) list() []File {
	if t.files == nil {
		return []File{}
	}
	return t.files
}
