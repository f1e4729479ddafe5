package image

import (
	"context"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Resolver finds the images one build names (FROM bases, --from images, named
// contexts), each name and platform once: later asks get the image the first
// one found, so that a build sees one image per name even if the registry or
// the store changes meanwhile. It is safe for concurrent use.
type Resolver struct {
	Store *store.Store
	// Pull resolves every name in the registry again, even when the store has
	// it (buildx --pull).
	Pull bool
	// NoPull uses only images already in the store.
	NoPull bool
	// Logf, if set, receives a pull's progress (layers fetched, unpacked,
	// bytes and time).
	Logf func(format string, args ...any)

	mu     sync.Mutex
	images map[string]v1.Image // by normalized name (or OCI layout) and platform
}

// Resolve returns the image ref names for platform p: from the store, else
// (unless NoPull) pulled; with Pull, pulled again whatever the store holds.
func (r *Resolver) Resolve(ctx context.Context, ref string, p v1.Platform) (v1.Image, error) {
	name, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	key := name + " " + p.String()
	r.mu.Lock()
	img, ok := r.images[key]
	r.mu.Unlock()
	if ok {
		return img, nil
	}
	if r.Logf != nil {
		ctx = WithLogf(ctx, r.Logf)
	}
	if r.Pull {
		img, err = RepullFor(ctx, r.Store, name, p)
	} else {
		img, err = ResolveFor(ctx, r.Store, name, !r.NoPull, p)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.images[key]; ok {
		return prev, nil // another ask of the same name won the race
	}
	if r.images == nil {
		r.images = map[string]v1.Image{}
	}
	r.images[key] = img
	return img, nil
}

// Named returns the image a named context that is an image or an OCI layout
// (not a directory) gives for platform p, each layout image read once.
func (r *Resolver) Named(ctx context.Context, spec NamedContext, p v1.Platform) (v1.Image, error) {
	if spec.Image != "" {
		return r.Resolve(ctx, spec.Image, p)
	}
	key := "layout " + spec.Layout + " " + spec.LayoutTag + " " + spec.LayoutDigest + " " + p.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if img, ok := r.images[key]; ok {
		return img, nil
	}
	img, err := LayoutImage(r.Store, spec.Layout, spec.LayoutTag, spec.LayoutDigest, p)
	if err != nil {
		return nil, err
	}
	if r.images == nil {
		r.images = map[string]v1.Image{}
	}
	r.images[key] = img
	return img, nil
}
