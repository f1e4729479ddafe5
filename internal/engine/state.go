package engine

import (
	"encoding/json"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/store"
)

// stageState is a stage's state between instructions.
type stageState struct {
	layers []v1.Layer
	cfg    v1.ConfigFile
	key    string            // identity of the filesystem state (a cache chain key)
	args   map[string]string // ARGs declared in the stage, with their values
	// argWins holds the ARGs given a value after the last ENV of the same name:
	// BuildKit's build environment is one list where the later one wins, while
	// the image's Env keeps the ENV value.
	argWins map[string]bool
	shell   []string
	cmdSet  bool
	created time.Time
	epoch   *time.Time // the build's source date epoch, if any
	// namedDir is a stage replaced by a local-directory named context: it has
	// no filesystem state and cannot be a FROM base.
	namedDir bool
}

func (s *stageState) clone() *stageState {
	c := *s
	c.layers = append([]v1.Layer(nil), s.layers...)
	c.args = map[string]string{}
	for k, v := range s.args {
		c.args[k] = v
	}
	c.argWins = map[string]bool{}
	for k := range s.argWins {
		c.argWins[k] = true
	}
	c.shell = append([]string(nil), s.shell...)
	c.cfg = *s.cfg.DeepCopy()
	return &c
}

// envMap returns the config Env as a map.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// setEnv sets k=v in env, keeping order.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// expandEnv is what instruction arguments are expanded with: the stage's ARGs
// and its ENV, the one set last winning.
func (s *stageState) expandEnv() map[string]string {
	m := map[string]string{}
	for k, v := range s.args {
		m[k] = v
	}
	for k, v := range envMap(s.cfg.Config.Env) {
		if !s.argWins[k] {
			m[k] = v
		}
	}
	return m
}

// runEnv is the environment of a RUN: Env, plus the ARGs, which replace an Env
// value only when set after it.
func (s *stageState) runEnv() []string {
	env := append([]string(nil), s.cfg.Config.Env...)
	have := envMap(env)
	for _, k := range sortedKeys(s.args) {
		if _, ok := have[k]; !ok {
			env = append(env, k+"="+s.args[k])
		} else if s.argWins[k] {
			env = setEnv(env, k, s.args[k])
		}
	}
	return env
}

// record is what the cache holds for a filesystem step: the snapshot its changes
// were committed as, and the layer blob once one was made (see snaplayer.go). A
// step that wrote its layer blob directly (a COPY streamed into a tar) has a
// Layer and no Snapshot; a step that changed nothing has neither.
type record struct {
	Snapshot *v1.Hash         `json:"snapshot,omitempty"`
	Layer    *store.LayerInfo `json:"layer,omitempty"`
	Created  time.Time        `json:"created"`
}

func decodeRecord(data []byte, r *record) error { return json.Unmarshal(data, r) }

// usable reports whether what r names is still in the store, in a form this build
// can use: a snapshot's tree (its blob is made again on demand if it went), or a
// directly written blob in the compression asked for.
func (b *builder) usable(r *record) bool {
	if r.Snapshot != nil {
		if _, ok := b.st.SnapshotDir(*r.Snapshot); ok {
			return true
		}
		if r.Layer == nil {
			return false
		}
		_, ok := b.st.LayerDirPath(r.Layer.DiffID)
		return ok || b.st.HasBlob(r.Layer.Digest)
	}
	if r.Layer == nil {
		return true
	}
	want, err := b.opts.Compression.MediaType()
	return err == nil && r.Layer.MediaType == want && b.st.HasBlob(r.Layer.Digest)
}

func (b *builder) cacheGet(key string) (*record, bool) {
	if b.opts.NoCache {
		return nil, false
	}
	data, err := b.st.GetCache(key)
	if err != nil {
		return nil, false
	}
	var r record
	if err := decodeRecord(data, &r); err != nil || !b.usable(&r) {
		return nil, false
	}
	return &r, true
}

func (b *builder) cachePut(key string, r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.st.PutCache(key, data)
}
