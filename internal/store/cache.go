package store

import (
	"errors"

	"fmt"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"os"
	"path/filepath"
	"sort"
	"time"
)

func validCacheKey(key string) error {
	if len(key) < 2 || len(key) > 128 {
		return fmt.Errorf("cache key %q: want 2 to 128 lowercase hex characters", key)
	}
	for _, c := range key {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("cache key %q: want 2 to 128 lowercase hex characters", key)
		}
	}
	return nil
}

func (s *Store) cachePath(key string) string { return s.path("cache", key[:2], key) }

// GetCache returns the value stored under key, or an error wrapping ErrNotFound.
func (s *Store) GetCache(key string) ([]byte, error) {
	if err := validCacheKey(key); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.cachePath(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cache key %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading cache key %s: %w", key, err)
	}
	// What the value refers to stays until this Store is closed.
	var refs []v1.Hash
	digestsIn(b, func(h v1.Hash) { refs = append(refs, h) })
	if err := s.hold(refs...); err != nil {
		return nil, fmt.Errorf("reading cache key %s: %w", key, err)
	}
	// The entry's modification time records its last use, for prune.
	now := time.Now()
	_ = os.Chtimes(s.cachePath(key), now, now)
	return b, nil
}

// CacheEntry is one build cache entry and when it was last used.
type CacheEntry struct {
	Key      string
	LastUsed time.Time
}

// CacheEntries lists the build cache, least recently used first.
func (s *Store) CacheEntries() ([]CacheEntry, error) {
	var out []CacheEntry
	shards, err := os.ReadDir(s.path("cache"))
	if err != nil {
		return nil, fmt.Errorf("listing build cache: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		ents, err := os.ReadDir(s.path("cache", sh.Name()))
		if err != nil {
			return nil, fmt.Errorf("listing build cache: %w", err)
		}
		for _, e := range ents {
			if validCacheKey(e.Name()) != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			out = append(out, CacheEntry{Key: e.Name(), LastUsed: fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

// PutCache stores val under key (atomically replacing any old value). Values that
// mention "sha256:HEX" digests keep those blobs and layer directories alive in GC.
func (s *Store) PutCache(key string, val []byte) error {
	if err := validCacheKey(key); err != nil {
		return err
	}
	p := s.cachePath(key)
	if _, err := os.Stat(filepath.Dir(p)); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(p), privateMode); err != nil {
			return fmt.Errorf("writing cache key %s: %w", key, err)
		}
		if err := SyncDir(s.path("cache")); err != nil {
			return fmt.Errorf("writing cache key %s: %w", key, err)
		}
	}
	if err := s.writeFileAtomic(p, val); err != nil {
		return fmt.Errorf("writing cache key %s: %w", key, err)
	}
	return nil
}

// DeleteCache removes key; a missing key is not an error.
func (s *Store) DeleteCache(key string) error {
	if err := validCacheKey(key); err != nil {
		return err
	}
	if err := os.Remove(s.cachePath(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting cache key %s: %w", key, err)
	}
	return nil
}

// ClearCache removes every build cache entry. Run GC afterwards to free what they kept.
// The shard directories stay: a build running beside it may be putting an entry
// into one (PutCache makes a shard once and then renames into it).
func (s *Store) ClearCache() error {
	shards, err := os.ReadDir(s.path("cache"))
	if err != nil {
		return fmt.Errorf("clearing build cache: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			if err := os.Remove(s.path("cache", sh.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("clearing build cache: %w", err)
			}
			continue
		}
		ents, err := os.ReadDir(s.path("cache", sh.Name()))
		if err != nil {
			return fmt.Errorf("clearing build cache: %w", err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(s.path("cache", sh.Name(), e.Name())); err != nil {
				return fmt.Errorf("clearing build cache: %w", err)
			}
		}
	}
	return nil
}

// walkCache calls fn with every cache value.
func (s *Store) walkCache(fn func(key string, val []byte, size int64)) error {
	shards, err := os.ReadDir(s.path("cache"))
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		ents, err := os.ReadDir(s.path("cache", sh.Name()))
		if err != nil {
			return err
		}
		for _, e := range ents {
			b, err := os.ReadFile(s.path("cache", sh.Name(), e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			fn(e.Name(), b, int64(len(b)))
		}
	}
	return nil
}
