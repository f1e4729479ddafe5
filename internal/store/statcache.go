package store

import (
	"fmt"
	"os"
)

// validStatCacheName reports whether name is what a stat cache is called: a
// hex digest (8 to 64 lowercase digits) of its context's path.
func validStatCacheName(name string) bool {
	return len(name) >= 8 && len(name) <= 64 && isLowerHex([]byte(name))
}

// StatCache returns the stat cache stored under name (ErrNotFound when there is none).
// Its contents are the engine's; the store only keeps them.
func (s *Store) StatCache(name string) ([]byte, error) {
	if !validStatCacheName(name) {
		return nil, fmt.Errorf("stat cache name %q: not a hex digest", name)
	}
	data, err := os.ReadFile(s.path("statcache", name))
	if os.IsNotExist(err) {
		return nil, ErrNotFound
	}
	return data, err
}

// PutStatCache replaces the stat cache under name, atomically (written in tmp/,
// fsynced and renamed), so a killed process leaves the old one or the new one.
func (s *Store) PutStatCache(name string, data []byte) error {
	if !validStatCacheName(name) {
		return fmt.Errorf("stat cache name %q: not a hex digest", name)
	}
	if err := os.Mkdir(s.path("statcache"), privateMode); err != nil && !os.IsExist(err) {
		return fmt.Errorf("making stat cache directory: %w", err)
	}
	return s.writeFileAtomic(s.path("statcache", name), data)
}
