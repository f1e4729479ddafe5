// Package cachekey makes the build cache's keys: a SHA-256 over an injective
// encoding of a step's parts (its parent's key, the instruction, the files it
// reads), so that two steps share a key only when every part is equal.
//
// Parts may be strings (any bytes: file names need not be UTF-8), booleans,
// integers, nil, and slices, arrays, maps, structs and pointers of those. A part
// of another kind is a programming error and panics.
package cachekey

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
)

// keyVersion starts every key; a change of the key encoding changes it, so
// that records made under the old encoding miss instead of colliding.
const keyVersion = "slimbuild-key-2"

// Of hashes the parts of a cache key. The encoding is injective: every
// value is written with its kind and, for strings and lists, its length, and
// strings as their raw bytes (file names need not be UTF-8), so distinct parts
// never give the same bytes to hash.
func Of(parts ...any) string {
	h := sha256.New()
	w := bufio.NewWriter(h)
	w.WriteString(keyVersion)
	encodeKeyPart(w, reflect.ValueOf(parts))
	w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}

// encodeKeyPart writes v: a kind byte, then the value. It panics on a kind
// that has no place in a cache key (a programming error).
func encodeKeyPart(w *bufio.Writer, v reflect.Value) {
	var num [binary.MaxVarintLen64]byte
	uvarint := func(u uint64) { w.Write(num[:binary.PutUvarint(num[:], u)]) }
	switch v.Kind() {
	case reflect.Invalid:
		w.WriteByte('n')
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			w.WriteByte('n')
			return
		}
		encodeKeyPart(w, v.Elem())
	case reflect.String:
		w.WriteByte('s')
		uvarint(uint64(v.Len()))
		w.WriteString(v.String())
	case reflect.Bool:
		w.WriteByte('b')
		if v.Bool() {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.WriteByte('i')
		w.Write(num[:binary.PutVarint(num[:], v.Int())])
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.WriteByte('u')
		uvarint(v.Uint())
	case reflect.Slice, reflect.Array:
		w.WriteByte('l')
		uvarint(uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			encodeKeyPart(w, v.Index(i))
		}
	case reflect.Map:
		w.WriteByte('m')
		uvarint(uint64(v.Len()))
		keys := v.MapKeys()
		enc := make([]string, len(keys))
		for i, k := range keys {
			enc[i] = Of(k.Interface())
		}
		order := make([]int, len(keys))
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return enc[order[a]] < enc[order[b]] })
		for _, i := range order {
			encodeKeyPart(w, keys[i])
			encodeKeyPart(w, v.MapIndex(keys[i]))
		}
	case reflect.Struct:
		w.WriteByte('t')
		uvarint(uint64(v.NumField()))
		for i := 0; i < v.NumField(); i++ {
			encodeKeyPart(w, v.Field(i))
		}
	default:
		panic(fmt.Sprintf("cache key part of kind %s", v.Kind()))
	}
}
