package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Entry is one path of a root filesystem as the parity harness compares it.
// Modification times are deliberately absent.
type Entry struct {
	Path    string `json:"path"`
	Type    string `json:"type,omitempty"` // file, dir, symlink, char, block, fifo
	Mode    string `json:"mode,omitempty"` // octal permission and special bits, e.g. "4755"
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Size    int64  `json:"size,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Link    string `json:"link,omitempty"`    // symlink target
	Dev     string `json:"dev,omitempty"`     // "major:minor" for char and block devices
	Deleted bool   `json:"deleted,omitempty"` // in the base, gone from the result
}

// FS is a root filesystem listing keyed by absolute, cleaned path ("/" excluded).
type FS map[string]Entry

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// cleanPath turns a tar name ("./a/b/", "a/b") into "/a/b"; "" for the root.
func cleanPath(name string) string {
	p := path.Clean("/" + name)
	if p == "/" {
		return ""
	}
	return p
}

// removeTree deletes p and everything below it.
func (fs FS) removeTree(p string) {
	delete(fs, p)
	prefix := p + "/"
	for k := range fs {
		if strings.HasPrefix(k, prefix) {
			delete(fs, k)
		}
	}
}

// removeChildren deletes everything below dir, keeping dir itself.
func (fs FS) removeChildren(dir string) {
	prefix := dir + "/"
	for k := range fs {
		if strings.HasPrefix(k, prefix) {
			delete(fs, k)
		}
	}
}

// ensureParents adds the implicit parent directories of p the way extractors do
// when a layer names a path whose parents it does not list.
func (fs FS) ensureParents(p string) {
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := fs[d]; ok {
			return
		}
		fs[d] = Entry{Path: d, Type: "dir", Mode: "0755"}
	}
}

// ApplyLayer applies one uncompressed layer tar (OCI whiteouts and opaque
// directories included) on top of fs. A whiteout or opaque marker hides only
// what lower layers hold, so they are applied before the layer's own entries.
// Hard links are recorded as regular files carrying their target's content.
func (fs FS) ApplyLayer(r io.Reader) error {
	type change struct {
		e        Entry
		hardlink string // target path, resolved after the layer is read
	}
	var (
		changes   []change
		opaques   []string
		whiteouts []string
		local     = map[string]Entry{}
	)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", err)
		}
		p := cleanPath(hdr.Name)
		if p == "" {
			continue // the root directory itself is not compared
		}
		base := path.Base(p)
		if base == opaqueMarker {
			opaques = append(opaques, path.Dir(p))
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			whiteouts = append(whiteouts, path.Join(path.Dir(p), strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		e := Entry{
			Path: p,
			Mode: fmt.Sprintf("%04o", hdr.Mode&07777),
			UID:  hdr.Uid,
			GID:  hdr.Gid,
		}
		c := change{}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type = "file"
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return fmt.Errorf("reading %q from layer: %w", p, err)
			}
			e.Size = n
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
		case tar.TypeLink:
			e.Type = "file"
			c.hardlink = cleanPath(hdr.Linkname)
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeSymlink:
			e.Type = "symlink"
			e.Link = hdr.Linkname
		case tar.TypeChar, tar.TypeBlock:
			e.Type = map[byte]string{tar.TypeChar: "char", tar.TypeBlock: "block"}[hdr.Typeflag]
			e.Dev = fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
		case tar.TypeFifo:
			e.Type = "fifo"
		default:
			continue // PAX/GNU metadata records and the like
		}
		if c.hardlink != "" {
			t, ok := local[c.hardlink]
			if !ok {
				t, ok = fs[c.hardlink]
			}
			if !ok {
				return fmt.Errorf("hard link %q to missing %q", p, c.hardlink)
			}
			e.Size, e.SHA256 = t.Size, t.SHA256
		}
		c.e = e
		local[p] = e
		changes = append(changes, c)
	}
	for _, d := range opaques {
		fs.removeChildren(d)
	}
	for _, w := range whiteouts {
		fs.removeTree(w)
	}
	for _, c := range changes {
		if old, ok := fs[c.e.Path]; ok && (old.Type != "dir" || c.e.Type != "dir") {
			fs.removeTree(c.e.Path)
		}
		fs.ensureParents(c.e.Path)
		fs[c.e.Path] = c.e
	}
	return nil
}

// same reports whether two entries describe the same file (path aside).
func same(a, b Entry) bool {
	a.Path, b.Path = "", ""
	return a == b
}

// DiffAgainst lists what fs changed relative to base: new and modified paths,
// and base paths that are gone (Deleted). Sorted by path.
func (fs FS) DiffAgainst(base FS) []Entry {
	var out []Entry
	for p, e := range fs {
		if b, ok := base[p]; ok && same(b, e) {
			continue
		}
		out = append(out, e)
	}
	for p := range base {
		if _, ok := fs[p]; !ok {
			out = append(out, Entry{Path: p, Deleted: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// CompareEntries returns one line per difference between want and got.
func CompareEntries(want, got []Entry) []string {
	w := map[string]Entry{}
	for _, e := range want {
		w[e.Path] = e
	}
	g := map[string]Entry{}
	for _, e := range got {
		g[e.Path] = e
	}
	var paths []string
	for p := range w {
		paths = append(paths, p)
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var diffs []string
	for _, p := range paths {
		we, wok := w[p]
		ge, gok := g[p]
		switch {
		case !gok && we.Deleted:
			diffs = append(diffs, fmt.Sprintf("%s: expected deleted from the base, still present unchanged", p))
		case !gok:
			diffs = append(diffs, fmt.Sprintf("%s: expected %s, missing (or identical to the base)", p, describe(we)))
		case !wok && ge.Deleted:
			diffs = append(diffs, fmt.Sprintf("%s: deleted from the base, expected untouched", p))
		case !wok:
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %s", p, describe(ge)))
		case !same(we, ge):
			diffs = append(diffs, fmt.Sprintf("%s: expected %s, got %s", p, describe(we), describe(ge)))
		}
	}
	return diffs
}

func describe(e Entry) string {
	if e.Deleted {
		return "deleted"
	}
	s := fmt.Sprintf("%s %s %d:%d", e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case "file":
		h := e.SHA256
		if len(h) > 12 {
			h = h[:12]
		}
		s += fmt.Sprintf(" size=%d sha256=%s", e.Size, h)
	case "symlink":
		s += " -> " + e.Link
	case "char", "block":
		s += " dev=" + e.Dev
	}
	return s
}
