package engine

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
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
