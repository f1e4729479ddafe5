package report

import (
	"archive/tar"
	"bytes"
	"io"
	"reflect"
	"testing"
)

// FuzzScanLayer feeds arbitrary bytes as an uncompressed layer, applied twice (so every
// file is overwritten once), and checks the accounting: no panic, every copy of every file
// is either visible or hidden, and the renderers accept the result.
func FuzzScanLayer(f *testing.F) {
	for _, l := range plantedLayers() {
		// Small seeds keep the fuzzer fast: cut every body to 64 bytes.
		files := append([]tf(nil), l.files...)
		for i := range files {
			files[i].body = files[i].body[:min(len(files[i].body), 64)]
		}
		f.Add(tarBytes(f, files))
	}
	f.Add(tarBytes(f, []tf{symlink("a", "b"), symlink("b", "a"), file("a/x", "1", 0), whiteout(".wh.a")}))
	f.Add(tarBytes(f, []tf{dir("d/", 0o777), file("d/.wh..wh..opq", "", 0), {name: "l", typ: tar.TypeLink, link: "d"}}))
	f.Add([]byte{})
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ls, err := scanLayer(bytes.NewReader(data))
		if err != nil {
			return
		}
		if ls.bytes != int64(len(data)) {
			t.Fatalf("stream size %d, read %d", len(data), ls.bytes)
		}
		for _, e := range ls.entries {
			if e.size > 1<<40 { // sparse headers may claim sizes the sums cannot hold
				return
			}
		}
		u := newUnionFS(2, 5)
		u.apply(0, ls)
		u.apply(1, ls)
		r := &Report{Layers: []Layer{{FilesSize: ls.filesSize}, {Index: 1, FilesSize: ls.filesSize}}}
		u.finish(r, "", 5)
		if r.FilesSize+r.HiddenSize != 2*ls.filesSize {
			t.Fatalf("visible %d + hidden %d != added %d", r.FilesSize, r.HiddenSize, 2*ls.filesSize)
		}
		var dirs int64
		var files int
		for _, d := range r.Directories {
			dirs += d.Size
			files += d.Files
		}
		if dirs != r.FilesSize || files != r.FileCount {
			t.Fatalf("directories hold %d bytes in %d files, report %d in %d", dirs, files, r.FilesSize, r.FileCount)
		}
		if err := WriteText(io.Discard, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(io.Discard, r); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLayerCache: a scanned layer survives its cached form unchanged, and bytes the cache
// may hold (corrupted or crafted) decode to an error or to a scan that encodes back to
// itself, without panicking.
func FuzzLayerCache(f *testing.F) {
	for _, l := range plantedLayers() {
		ls, err := scanLayer(bytes.NewReader(tarBytes(f, l.files)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tarBytes(f, l.files), encodeScan(ls))
	}
	f.Add([]byte{}, []byte(scanMagic))
	f.Fuzz(func(t *testing.T, layer, cached []byte) {
		if ls, err := scanLayer(bytes.NewReader(layer)); err == nil {
			back, err := decodeScan(encodeScan(ls))
			if err != nil {
				t.Fatalf("decoding what was encoded: %v", err)
			}
			if !reflect.DeepEqual(normScan(ls), normScan(back)) {
				t.Fatalf("round trip changed the scan:\n%+v\n%+v", ls, back)
			}
		}
		ls, err := decodeScan(cached)
		if err != nil {
			return
		}
		again, err := decodeScan(encodeScan(ls))
		if err != nil || !reflect.DeepEqual(normScan(ls), normScan(again)) {
			t.Fatalf("a decoded scan does not survive a round trip: %v", err)
		}
	})
}

// normScan makes empty lists nil, which the cached form does not tell apart.
func normScan(ls *layerScan) layerScan {
	c := *ls
	if len(c.entries) == 0 {
		c.entries = nil
	}
	if len(c.whiteouts) == 0 {
		c.whiteouts = nil
	}
	if len(c.opaques) == 0 {
		c.opaques = nil
	}
	return c
}
