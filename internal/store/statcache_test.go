package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestStatCache(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.StatCache("00ff00ff00ff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing stat cache: got %v, want ErrNotFound", err)
	}
	if err := s.PutStatCache("00ff00ff00ff", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatCache("00ff00ff00ff", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.StatCache("00ff00ff00ff"); err != nil || string(got) != "two" {
		t.Fatalf("StatCache = %q, %v; want two", got, err)
	}
	// Nothing but the cache itself beside it: temporary files live in tmp/.
	ents, _ := os.ReadDir(filepath.Join(root, "statcache"))
	if len(ents) != 1 {
		t.Errorf("statcache/ holds %d entries, want 1", len(ents))
	}
	if fi, err := os.Stat(filepath.Join(root, "statcache")); err != nil || fi.Mode().Perm() != privateMode {
		t.Errorf("statcache/ mode: %v, %v", fi.Mode(), err)
	}
	for _, bad := range []string{"../../escape", "", "x", "00ff/../../a", "/etc/passwd"} {
		if err := s.PutStatCache(bad, []byte("x")); err == nil {
			t.Errorf("PutStatCache(%q) succeeded", bad)
		}
		if _, err := s.StatCache(bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("StatCache(%q) = %v, want a name error", bad, err)
		}
	}
}
