package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	goruntime "runtime"
	"syscall"
)

func sysStat(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func goarch() string { return goruntime.GOARCH }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
