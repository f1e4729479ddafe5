package engine

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/image"
)

// imageOf assembles a state's image (package image's one assembler), dated by
// the epoch, else by its base image, else 1970.
func imageOf(s *stageState, annotations map[string]string) (v1.Image, error) {
	cfg := s.cfg.DeepCopy()
	if s.epoch != nil {
		cfg.Created = v1.Time{Time: s.epoch.UTC()}
	} else if !s.created.IsZero() {
		cfg.Created = v1.Time{Time: s.created.UTC()}
	} else {
		cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	}
	return image.Assemble(cfg, s.layers, annotations)
}

// assemble writes the target state's config and manifest to the store (its layers
// are there already, or are fetched from the shared cache now) and returns the
// stored image.
func (b *builder) assemble(s *stageState) (v1.Hash, v1.Image, error) {
	if err := image.FetchLayers(s.layers); err != nil {
		return v1.Hash{}, nil, err
	}
	if err := b.materializeAll(s.layers); err != nil {
		return v1.Hash{}, nil, err
	}
	if len(b.opts.Labels) > 0 {
		// The command line's labels come after the Dockerfile's, as in buildx.
		final := s.clone()
		if final.cfg.Config.Labels == nil {
			final.cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.opts.Labels {
			final.cfg.Config.Labels[k] = v
		}
		s = final
	}
	img, err := imageOf(s, b.opts.Annotations)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	return image.StoreManifest(b.st, img)
}
