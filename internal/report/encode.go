package report

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"sync"
)

// The cached form of one layer's scan (see layers.go). It holds metadata only, so its
// size grows with the layer's entries, never with their contents:
//
//	magic "slimbuild report layer\x00", version 1
//	uvarint bytes, files, files_size, tar_entries
//	uvarint n, then n whiteout paths; uvarint n, then n opaque directories
//	uvarint n, then n entries:
//	    uvarint shared (bytes of the previous entry's path it starts with), string rest,
//	    byte kind, byte flags, varint mode, uvarint size, string linkname
//	4 bytes: CRC-32C (Castagnoli) of everything before, big-endian
//
// Strings are a uvarint length and the bytes. Paths share prefixes because tars list a
// directory's entries together, which keeps the form small.

const scanMagic = "slimbuild report layer\x00\x01"

// castagnoli is the table of the scans' checksums, made when first needed.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// errCorrupt is what decodeScan returns for bytes it did not write.
var errCorrupt = errors.New("corrupt layer analysis")

func encodeScan(ls *layerScan) []byte {
	n := len(scanMagic) + 64
	for _, e := range ls.entries {
		n += len(e.path)/2 + len(e.linkname) + 12
	}
	for _, s := range ls.whiteouts {
		n += len(s) + 2
	}
	for _, s := range ls.opaques {
		n += len(s) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, scanMagic...)
	b = binary.AppendUvarint(b, uint64(ls.bytes))
	b = binary.AppendUvarint(b, uint64(ls.files))
	b = binary.AppendUvarint(b, uint64(ls.filesSize))
	b = binary.AppendUvarint(b, uint64(ls.tarEnts))
	for _, list := range [][]string{ls.whiteouts, ls.opaques} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendString(b, s)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(ls.entries)))
	prev := ""
	for _, e := range ls.entries {
		shared := commonPrefix(prev, e.path)
		b = binary.AppendUvarint(b, uint64(shared))
		b = appendString(b, e.path[shared:])
		b = append(b, e.kind, e.flags)
		b = binary.AppendVarint(b, e.mode)
		b = binary.AppendUvarint(b, uint64(e.size))
		b = appendString(b, e.linkname)
		prev = e.path
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// decodeScan reads what encodeScan wrote. Anything else (truncated, altered, another
// version) is errCorrupt; allocations are bounded by len(b).
func decodeScan(b []byte) (*layerScan, error) {
	if len(b) < len(scanMagic)+4 || string(b[:len(scanMagic)]) != scanMagic {
		return nil, errCorrupt
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli()) != sum {
		return nil, errCorrupt
	}
	d := decoder{b: body[len(scanMagic):]}
	ls := &layerScan{
		bytes:     d.int64(),
		files:     d.int(),
		filesSize: d.int64(),
		tarEnts:   d.int(),
	}
	ls.whiteouts = d.strings()
	ls.opaques = d.strings()
	n := d.count(7) // an entry takes at least 7 bytes
	if n > 0 {
		ls.entries = make([]entry, 0, n)
	}
	var path []byte // the previous entry's path, then this one's
	for i := 0; i < n && d.err == nil; i++ {
		shared := d.int()
		if shared > len(path) {
			d.err = errCorrupt
			break
		}
		path = append(path[:shared], d.bytes()...)
		e := entry{path: string(path)}
		e.kind, e.flags = d.byte(), d.byte()
		e.mode = d.varint()
		e.size = d.int64()
		e.linkname = d.string()
		if e.kind < kindReg || e.kind > kindOther {
			d.err = errCorrupt
		}
		ls.entries = append(ls.entries, e)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return ls, nil
}

// decoder reads the fields of an encoded scan; the first problem sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int64() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.err = errCorrupt
		return 0
	}
	return int64(v)
}

func (d *decoder) int() int {
	v := d.uvarint()
	if v > math.MaxInt32 {
		d.err = errCorrupt
		return 0
	}
	return int(v)
}

// count reads a number of items that take at least min bytes each.
func (d *decoder) count(min int) int {
	n := d.int()
	if n > len(d.b)/min {
		d.err = errCorrupt
		return 0
	}
	return n
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string { return string(d.bytes()) }

// bytes reads a string without copying it.
func (d *decoder) bytes() []byte {
	n := d.int()
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errCorrupt
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.string())
	}
	return out
}
