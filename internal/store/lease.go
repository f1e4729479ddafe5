package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Leases keep what a live process uses safe from GC run by another process.
//
// Every open Store has a lease, ROOT/leases/ID: a file it holds an exclusive flock
// on until Close (or its death, which releases the flock), listing the digests it
// was handed or wrote, one per line. GC holds ROOT/gc exclusively while it marks
// and sweeps, keeps every digest listed in a live lease of another Store, and
// removes dead leases. A Store adds to its lease under ROOT/gc shared before it
// uses or publishes the content, so a concurrent GC either sees the entry or has
// finished (and what it removed is then reported missing to the caller).

// openLease makes this Store's lease and the handle on ROOT/gc.
func (s *Store) openLease() error {
	dir := s.path("leases")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	gc, err := os.OpenFile(s.path("gc"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "lease-")
	if err != nil {
		gc.Close()
		return err
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		gc.Close()
		f.Close()
		os.Remove(f.Name())
		return err
	}
	s.gcLock, s.lease, s.held = gc, f, map[string]bool{}
	return nil
}

// closeLease ends the lease: what it held becomes collectable.
func (s *Store) closeLease() {
	if s.lease != nil {
		os.Remove(s.lease.Name())
		s.lease.Close()
		s.lease = nil
	}
	if s.gcLock != nil {
		s.gcLock.Close()
		s.gcLock = nil
	}
}

// hold adds digests (blobs or diffIDs) to this Store's lease, waiting for a
// running GC to finish first. Call it before using or publishing the content.
func (s *Store) hold(hs ...v1.Hash) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.lease == nil {
		return errors.New("store is closed")
	}
	var buf []byte
	for _, h := range hs {
		if validHash(h) && !s.held[h.Hex] {
			buf = append(buf, h.String()+"\n"...)
		}
	}
	if len(buf) == 0 {
		return nil
	}
	if err := flock(s.gcLock, unix.LOCK_SH); err != nil {
		return fmt.Errorf("locking store against GC: %w", err)
	}
	defer flock(s.gcLock, unix.LOCK_UN)
	if _, err := s.lease.Write(buf); err != nil {
		return fmt.Errorf("writing store lease: %w", err)
	}
	for _, h := range hs {
		s.held[h.Hex] = true
	}
	return nil
}

// leasedDigests calls keep with every digest held by a live lease other than this
// Store's own, and removes dead leases. The caller holds ROOT/gc exclusively.
func (s *Store) leasedDigests(keep func(v1.Hash)) error {
	dir := s.path("leases")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading leases: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if s.lease != nil && p == s.lease.Name() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue // ended meanwhile
		}
		if flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil { // nobody holds it: its process is gone
			os.Remove(p)
			f.Close()
			continue
		}
		b, err := os.ReadFile(p)
		f.Close()
		if err != nil {
			continue
		}
		digestsIn(b, keep)
	}
	return nil
}

// removeDeadLeases removes every lease but this Store's; the caller holds the store alone.
func (s *Store) removeDeadLeases() {
	ents, _ := os.ReadDir(s.path("leases"))
	for _, e := range ents {
		p := s.path("leases", e.Name())
		if s.lease == nil || p != s.lease.Name() {
			os.Remove(p)
		}
	}
}
