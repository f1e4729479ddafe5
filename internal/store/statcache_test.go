package store

import (
	"errors"
	"fmt"
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

// TestClearCacheBesidePuts: prune --all clears the cache while builds put entries;
// a put must never find its shard directory gone between making it and renaming
// into it.
func TestClearCacheBesidePuts(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			if err := s.ClearCache(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 600; i++ {
		key := fmt.Sprintf("%064x", i*7919)
		if err := s.PutCache(key, []byte(`{}`)); err != nil {
			t.Fatalf("PutCache beside ClearCache: %v", err)
		}
	}
	<-done
}
