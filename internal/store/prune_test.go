package store

import (
	"fmt"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// cachedImages stores n random images that only a cache entry each keeps, the
// first the least recently used, and returns their digests and cache keys.
func cachedImages(t *testing.T, s *Store, n int) ([]v1.Hash, []string) {
	t.Helper()
	var hs []v1.Hash
	var keys []string
	start := time.Now().Add(-time.Hour)
	for i := range n {
		h, err := s.WriteImage(randomImage(t, true))
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%02x%062x", i, i)
		if err := s.PutCache(key, []byte(fmt.Sprintf(`{"image":%q}`, h))); err != nil {
			t.Fatal(err)
		}
		used := start.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(s.cachePath(key), used, used); err != nil {
			t.Fatal(err)
		}
		hs, keys = append(hs, h), append(keys, key)
	}
	return hs, keys
}

func storeBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	u, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	return u.BlobBytes + u.LayerDirBytes + u.CacheBytes + u.TempBytes
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name string
		// opts is given the store's size before pruning, and one image's.
		opts      func(total, one int64) PruneOptions
		wantKept  []bool // which of the 4 cache entries stay, oldest first
		wantNamed bool
	}{
		{"plain", func(int64, int64) PruneOptions { return PruneOptions{} }, []bool{true, true, true, true}, true},
		{"all", func(int64, int64) PruneOptions { return PruneOptions{All: true} }, []bool{false, false, false, false}, true},
		{"keep storage above the size", func(total, _ int64) PruneOptions { return PruneOptions{KeepStorage: total + 1} }, []bool{true, true, true, true}, true},
		{"keep storage drops the least recently used", func(total, one int64) PruneOptions {
			return PruneOptions{KeepStorage: total - one/2}
		}, []bool{false, true, true, true}, true},
		{"keep storage of 1 byte empties the cache, not the names", func(int64, int64) PruneOptions { return PruneOptions{KeepStorage: 1} }, []bool{false, false, false, false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			named, err := s.WriteImage(randomImage(t, true))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Tag("named:latest", named); err != nil {
				t.Fatal(err)
			}
			before := storeBytes(t, s)
			hs, keys := cachedImages(t, s, 4)
			total := storeBytes(t, s)
			one := (total - before) / 4
			stats, err := s.Prune(tt.opts(total, one))
			if err != nil {
				t.Fatal(err)
			}
			dropped := 0
			for i, key := range keys {
				_, err := s.GetCache(key)
				if kept := err == nil; kept != tt.wantKept[i] {
					t.Errorf("cache entry %d kept = %v, want %v", i, kept, tt.wantKept[i])
				}
				_, err = s.Image(hs[i].String())
				if kept := err == nil; kept != tt.wantKept[i] {
					t.Errorf("image of cache entry %d kept = %v, want %v", i, kept, tt.wantKept[i])
				}
				if !tt.wantKept[i] {
					dropped++
				}
			}
			if dropped > 0 && (stats.Blobs == 0 || stats.Bytes == 0) {
				t.Errorf("stats %+v: %d images were dropped", stats, dropped)
			}
			if _, err := s.Image("named:latest"); err != nil {
				t.Errorf("the named image went: %v", err)
			}
		})
	}
	s := openStore(t)
	if _, err := s.Prune(PruneOptions{All: true, KeepStorage: 10}); err == nil {
		t.Error("Prune with All and KeepStorage: no error")
	}
}
