package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/store"
)

// defaultPath is what BuildKit puts in Env when the base image sets no PATH.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withDefaultPath returns env with defaultPath first when it sets no PATH.
func withDefaultPath(env []string) []string {
	if _, ok := envMap(env)["PATH"]; ok {
		return env
	}
	return append([]string{defaultPath}, env...)
}

// stageState is a stage's state between instructions.
type stageState struct {
	layers  []v1.Layer
	cfg     v1.ConfigFile
	key     string            // identity of the filesystem state (a cache chain key)
	args    map[string]string // ARGs declared in the stage, with their values
	shell   []string
	cmdSet  bool
	created time.Time
	epoch   *time.Time // the build's source date epoch, if any
}

func (s *stageState) clone() *stageState {
	c := *s
	c.layers = append([]v1.Layer(nil), s.layers...)
	c.args = map[string]string{}
	for k, v := range s.args {
		c.args[k] = v
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

// expandEnv is what instruction arguments are expanded with: the stage's ARGs,
// overridden by its ENV.
func (s *stageState) expandEnv() map[string]string {
	m := map[string]string{}
	for k, v := range s.args {
		m[k] = v
	}
	for k, v := range envMap(s.cfg.Config.Env) {
		m[k] = v
	}
	return m
}

// runEnv is the environment of a RUN: Env, plus ARGs that Env does not set.
func (s *stageState) runEnv() []string {
	env := append([]string(nil), s.cfg.Config.Env...)
	have := envMap(env)
	for _, k := range sortedKeys(s.args) {
		if _, ok := have[k]; !ok {
			env = append(env, k+"="+s.args[k])
		}
	}
	return env
}

// keyOf hashes the parts of a cache key.
func keyOf(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		if err := enc.Encode(p); err != nil {
			panic(fmt.Sprintf("cache key part %T: %v", p, err))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// record is what the cache holds for a filesystem step.
type record struct {
	Layer   *store.LayerInfo `json:"layer,omitempty"`
	Created time.Time        `json:"created"`
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
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, false
	}
	if r.Layer != nil && !b.st.HasBlob(r.Layer.Digest) {
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

// KeyOf is the engine's key hash, for callers that cache things by image.
func KeyOf(parts ...any) string { return keyOf(parts...) }
