package store

import (
	"fmt"
	"time"

	"github.com/slimbuild/slimbuild/internal/layer"
)

// WriteLayer streams a new layer blob, compressed with c, whose tar fill
// writes; with an epoch, later times in it are clamped to the epoch. Nothing
// stays in the store if fill or the write fails.
func (s *Store) WriteLayer(c Compression, epoch *time.Time, fill func(tw *layer.Writer) error) (*LayerInfo, error) {
	lw, err := s.NewLayerWriter(c)
	if err != nil {
		return nil, err
	}
	tw := layer.NewWriter(lw)
	if epoch != nil {
		tw.SetSourceDateEpoch(*epoch)
	}
	if err := fill(tw); err != nil {
		lw.Abort()
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		lw.Abort()
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	info, err := lw.Commit()
	if err != nil {
		return nil, fmt.Errorf("storing layer: %w", err)
	}
	return &info, nil
}
