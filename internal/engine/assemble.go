package engine

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/image"
)

// imageOf assembles a state's image (package image's one assembler) with labels
// added to its config (see dockerfile.Scope.ConfigFile).
func imageOf(s *stageState, labels, annotations map[string]string) (v1.Image, error) {
	return image.Assemble(s.ConfigFile(labels), s.layers, annotations)
}

// assemble writes the target state's config and manifest to the store (its layers
// are there already, or are fetched from the shared cache now) and returns the
// stored image.
func (b *builder) assemble(s *stageState) (v1.Hash, v1.Image, error) {
	if err := image.FetchLayers(s.layers); err != nil {
		return v1.Hash{}, nil, err
	}
	if err := b.snaps.Materialize(s.layers, min(b.opts.Jobs, 2)); err != nil {
		return v1.Hash{}, nil, err
	}
	img, err := imageOf(s, b.opts.Labels, b.opts.Annotations)
	if err != nil {
		return v1.Hash{}, nil, err
	}
	return image.StoreManifest(b.st, img)
}
