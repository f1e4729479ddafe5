package engine

import (
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/store"
)

// stageState is a stage's state between instructions: its filesystem (layers,
// keyed by key) and its dockerfile.Scope (config and variables).
type stageState struct {
	dockerfile.Scope
	layers []v1.Layer
	key    string // identity of the filesystem state (a cache chain key)
	// namedDir is a stage replaced by a local-directory named context: it has
	// no filesystem state and cannot be a FROM base.
	namedDir bool
}

func (s *stageState) clone() *stageState {
	c := *s
	c.Scope = s.Scope.Clone()
	c.layers = slices.Clone(s.layers)
	return &c
}

// cacheGet is key's record in the store's cache when the build may use it.
func (b *builder) cacheGet(key string) (*store.StepRecord, bool) {
	if b.opts.NoCache {
		return nil, false
	}
	r, ok := b.st.Step(key)
	if !ok || !b.st.Usable(r, b.opts.Compression) {
		return nil, false
	}
	return r, true
}
