package store

import "fmt"

// PruneOptions say how much of the build cache Prune drops before collecting.
type PruneOptions struct {
	// All drops the whole build cache.
	All bool
	// KeepStorage, when greater than 0, drops the least recently used cache
	// entries until the store (blobs, unpacked layers, cache and temporary
	// files) takes at most this many bytes, or the cache is empty. What names
	// refer to is never dropped, so the store may stay larger. It cannot be
	// combined with All.
	KeepStorage int64
}

// Prune is `slimbuild prune`: it drops build cache entries as opts say, and
// collects (GC) what nothing refers to any more. The stats add up every
// collection it ran.
func (s *Store) Prune(opts PruneOptions) (GCStats, error) {
	var stats GCStats
	if opts.All && opts.KeepStorage > 0 {
		return stats, fmt.Errorf("pruning: dropping the whole cache and keeping storage exclude each other")
	}
	gc := func() error {
		st, err := s.GC(GCOptions{})
		stats.Blobs += st.Blobs
		stats.LayerDirs += st.LayerDirs
		stats.Bytes += st.Bytes
		return err
	}
	if opts.All {
		if err := s.ClearCache(); err != nil {
			return stats, err
		}
	}
	if err := gc(); err != nil {
		return stats, err
	}
	if opts.KeepStorage <= 0 {
		return stats, nil
	}
	// A tenth of the cache at a time, least recently used first: each round's
	// GC shows what dropping it freed, without measuring every entry alone.
	for {
		u, err := s.DiskUsage()
		if err != nil {
			return stats, err
		}
		if u.BlobBytes+u.LayerDirBytes+u.CacheBytes+u.TempBytes <= opts.KeepStorage {
			return stats, nil
		}
		entries, err := s.CacheEntries()
		if err != nil {
			return stats, err
		}
		if len(entries) == 0 {
			return stats, nil
		}
		for _, e := range entries[:max(1, len(entries)/10)] {
			if err := s.DeleteCache(e.Key); err != nil {
				return stats, err
			}
		}
		if err := gc(); err != nil {
			return stats, err
		}
	}
}
