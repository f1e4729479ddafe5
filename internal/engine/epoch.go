package engine

// Reproducible builds with SOURCE_DATE_EPOCH, after BuildKit:
//
//   - The epoch comes from Options.SourceDateEpoch (the CLI fills it from
//     --source-date-epoch or $SOURCE_DATE_EPOCH), else from the build arg
//     SOURCE_DATE_EPOCH, else from a global `ARG SOURCE_DATE_EPOCH=N` default.
//     Whichever it is, the build arg SOURCE_DATE_EPOCH holds it, so a stage
//     that declares `ARG SOURCE_DATE_EPOCH` sees it (BuildKit does the same).
//     The value "context" leaves it unset, as BuildKit does for a local context.
//     (dockerfile.WithEpochArg and Plan.SourceDateEpoch.)
//   - Every time in a layer the build writes is clamped: later than the epoch
//     becomes the epoch, earlier stays (BuildKit's rewrite-timestamp). Base
//     image layers are not rewritten.
//   - History entries the build adds, and the config's created, are the epoch;
//     the base image's own history keeps its times (BuildKit keeps them too).
//   - Layers are written clamped when a step runs, never rewritten on export,
//     so the epoch is part of every filesystem step's cache key: a layer made
//     without the epoch, or with another one, is never served to this build.

import (
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
)

// epochKey folds the epoch into a filesystem step's cache key.
func (b *builder) epochKey(key string) string {
	if b.opts.SourceDateEpoch == nil {
		return key
	}
	return cachekey.Of(key, dockerfile.SourceDateEpochArg, b.opts.SourceDateEpoch.Unix())
}
