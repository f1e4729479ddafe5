package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Multi-platform builds are one thin layer over the single-platform engine:
// Options.Platform is the target of one Build (its TARGET* ARGs, the platform
// FROM images are picked for, the result's config and every step's cache key),
// and BuildPlatforms runs Build once per platform and stores the results as one
// OCI image index. A stage whose platform is not the host's runs RUN through a
// binfmt_misc handler (Debian's qemu-user-static); runc needs nothing else.

func platformString(p v1.Platform) string {
	return dockerfile.FormatPlatform(dockerfile.SpecPlatform(p))
}

// targetPlatform is the platform the build is for.
func (b *builder) targetPlatform() v1.Platform { return dockerfile.ImagePlatform(b.plan.Platform) }

// stagePlatform is the platform stg is built for: its FROM --platform, or the target.
func stagePlatform(stg *dockerfile.Stage) v1.Platform { return dockerfile.ImagePlatform(stg.On) }

// setPlatform makes a stage that starts from an image or scratch one for its
// platform: the config says it, and the key of every step covers it and the
// target platform (so steps of two targets never share a result, even when
// the FROM image is the same).
func (b *builder) setPlatform(s *stageState, stg *dockerfile.Stage) {
	p := stagePlatform(stg)
	s.Image.OS, s.Image.Architecture, s.Image.Variant = p.OS, p.Architecture, p.Variant
	s.key = cachekey.Of(s.key, "platform", platformString(p), "target", platformString(b.targetPlatform()))
}

// checkEmulation fails a RUN of a stage whose platform the host cannot run
// programs of (once per architecture and build).
func (b *builder) checkEmulation(stg *dockerfile.Stage) error {
	return b.emulators.Check(stg.On.Architecture)
}

// PlatformsResult is a finished multi-platform build.
type PlatformsResult struct {
	// Digest is the stored index's.
	Digest v1.Hash
	Index  v1.ImageIndex
	// Results are the builds of each platform, in the order asked for.
	Results []*Result
}

// BuildPlatforms builds opts for each platform, one after the other, stores
// the images as one OCI image index and names it with opts.Tags. The images of
// the platforms stay in the store, unnamed, under the index.
func BuildPlatforms(ctx context.Context, st *store.Store, opts Options, platforms []v1.Platform) (*PlatformsResult, error) {
	if len(platforms) == 0 {
		return nil, errors.New("building for platforms: none given")
	}
	tags := opts.Tags
	res := &PlatformsResult{}
	var manifests []v1.Hash
	for _, p := range platforms {
		o := opts
		o.Tags = nil
		o.Platform = p
		o.BuildArgs = maps.Clone(opts.BuildArgs)
		progress := opts.Progress
		if progress != nil {
			name := platformString(p)
			o.Progress = func(e Event) {
				e.Stage = name + " " + e.Stage
				progress(e)
			}
		}
		r, err := Build(ctx, st, o)
		if err != nil {
			return nil, fmt.Errorf("building for %s: %w", platformString(p), err)
		}
		res.Results = append(res.Results, r)
		if slices.Contains(manifests, r.Digest) {
			return nil, fmt.Errorf("building for %s: the image is the same as another platform's (%s): is the target stage FROM --platform?", platformString(p), r.Digest)
		}
		manifests = append(manifests, r.Digest)
	}
	h, err := st.WriteIndex(manifests, nil)
	if err != nil {
		return nil, err
	}
	if err := image.Tag(st, tags, h); err != nil {
		return nil, err
	}
	idx, err := st.Index(h.String())
	if err != nil {
		return nil, err
	}
	res.Digest, res.Index = h, idx
	return res, nil
}
