package regcache

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/store"
)

const (
	// ArtifactType marks a manifest as a slimbuild cache.
	ArtifactType = "application/vnd.slimbuild.cache.v1"
	// ConfigMediaType is the media type of the cache's config blob.
	ConfigMediaType types.MediaType = "application/vnd.slimbuild.cache.config.v1+json"
	// Version is the config format version this package reads and writes.
	Version = 1
	// MaxConfigSize bounds the config blob Open reads (about 100 bytes a step without
	// a layer, 300 with one: some 50,000 steps).
	MaxConfigSize = 16 << 20
	// MaxManifestSize bounds the manifest Open accepts.
	MaxManifestSize = 16 << 20
)

// ErrInvalid is wrapped by errors about a cache whose content breaks the format.
var ErrInvalid = errors.New("invalid build cache")

// Step is one cached step: what the step with Key produced.
type Step struct {
	Key string `json:"-"`
	// Layer is the layer the step made, nil when it changed no file.
	Layer   *store.LayerInfo `json:"layer,omitempty"`
	Created time.Time        `json:"created"`
	// Blob is the layer's content, for Export (not serialised). A blob that is only
	// in a registry (from Cache.Blob) is mounted from there rather than downloaded.
	Blob v1.Layer `json:"-"`
}

// config is the cache's config blob.
type config struct {
	Version int              `json:"version"`
	Steps   map[string]*Step `json:"steps"`
}

// Cache is a build cache read from a registry. It is safe for concurrent use.
type Cache struct {
	ref    name.Reference
	ctx    context.Context
	puller *remote.Puller
	steps  map[string]*Step
}

// Open reads the cache at ref: its manifest and config, no layer. A ref that does
// not exist yet is an empty cache (found is false), as on a fleet's first build.
// The layers it hands out later download with ctx.
func Open(ctx context.Context, reg *image.Registry, ref string) (c *Cache, found bool, err error) {
	r, err := reg.Ref(ref)
	if err != nil {
		return nil, false, fmt.Errorf("cache %s: %w", ref, err)
	}
	puller, err := remote.NewPuller(reg.Options(ctx)...)
	if err != nil {
		return nil, false, fmt.Errorf("cache %s: %w", ref, err)
	}
	c = &Cache{ref: r, ctx: ctx, puller: puller, steps: map[string]*Step{}}
	desc, err := puller.Get(ctx, r)
	if err != nil {
		if isNotFound(err) {
			return c, false, nil
		}
		return nil, false, fmt.Errorf("reading cache %s: %w", ref, image.Explain(r.Context().RegistryStr(), err))
	}
	if err := c.load(desc); err != nil {
		return nil, false, fmt.Errorf("reading cache %s: %w", ref, err)
	}
	return c, true, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// load checks the manifest and reads the config.
func (c *Cache) load(desc *remote.Descriptor) error {
	if len(desc.Manifest) > MaxManifestSize {
		return fmt.Errorf("%w: manifest of %d bytes (at most %d)", ErrInvalid, len(desc.Manifest), MaxManifestSize)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		return fmt.Errorf("%w: media type %s, want an OCI image manifest", ErrInvalid, desc.MediaType)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return fmt.Errorf("%w: manifest: %v", ErrInvalid, err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return fmt.Errorf("%w: config media type %q, want %s (is this a slimbuild cache?)", ErrInvalid, m.Config.MediaType, ConfigMediaType)
	}
	if m.Config.Size < 0 || m.Config.Size > MaxConfigSize {
		return fmt.Errorf("%w: config of %d bytes (at most %d)", ErrInvalid, m.Config.Size, MaxConfigSize)
	}
	raw, err := c.fetchSmall(m.Config.Digest, m.Config.Size)
	if err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	steps, err := parseConfig(raw, m.Layers)
	if err != nil {
		return err
	}
	c.steps = steps
	return nil
}

// fetchSmall downloads a blob of known size and digest, reading at most size bytes.
func (c *Cache) fetchSmall(d v1.Hash, size int64) ([]byte, error) {
	if !validHash(d) {
		return nil, fmt.Errorf("%w: digest %q", ErrInvalid, d)
	}
	l, err := c.puller.Layer(c.ctx, c.ref.Context().Digest(d.String()))
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != size {
		return nil, fmt.Errorf("%w: blob %s has more or fewer than %d bytes", ErrInvalid, d, size)
	}
	got, _, _ := v1.SHA256(bytes.NewReader(raw))
	if got != d {
		return nil, fmt.Errorf("%w: blob %s has digest %s", ErrInvalid, d, got)
	}
	return raw, nil
}

// parseConfig checks a config against the format and the manifest's layers.
func parseConfig(raw []byte, layers []v1.Descriptor) (map[string]*Step, error) {
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	if cfg.Version != Version {
		return nil, fmt.Errorf("%w: config version %d, want %d", ErrInvalid, cfg.Version, Version)
	}
	listed := map[v1.Hash]v1.Descriptor{}
	for _, l := range layers {
		listed[l.Digest] = l
	}
	for key, s := range cfg.Steps {
		if !validKey(key) {
			return nil, fmt.Errorf("%w: step key %q is not 64 lowercase hex characters", ErrInvalid, key)
		}
		if s == nil {
			return nil, fmt.Errorf("%w: step %s is null", ErrInvalid, key)
		}
		s.Key = key
		if s.Layer == nil {
			continue
		}
		l := s.Layer
		if !validHash(l.Digest) || !validHash(l.DiffID) {
			return nil, fmt.Errorf("%w: step %s: malformed digest or diffID", ErrInvalid, key)
		}
		if !l.MediaType.IsLayer() || !l.MediaType.IsDistributable() || l.Size <= 0 {
			return nil, fmt.Errorf("%w: step %s: layer media type %q, size %d", ErrInvalid, key, l.MediaType, l.Size)
		}
		d, ok := listed[l.Digest]
		if !ok || d.Size != l.Size || d.MediaType != l.MediaType {
			return nil, fmt.Errorf("%w: step %s: layer %s is not in the manifest as described", ErrInvalid, key, l.Digest)
		}
	}
	if cfg.Steps == nil {
		cfg.Steps = map[string]*Step{}
	}
	return cfg.Steps, nil
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil && k == toLower(k)
}

func validHash(h v1.Hash) bool {
	return h.Algorithm == "sha256" && validKey(h.Hex)
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Len is how many steps the cache holds.
func (c *Cache) Len() int { return len(c.steps) }

// Ref is the cache's reference.
func (c *Cache) Ref() name.Reference { return c.ref }

// Lookup returns what the step with key produced: its layer (nil for none) and time.
func (c *Cache) Lookup(key string) (*store.LayerInfo, time.Time, bool) {
	s, ok := c.steps[key]
	if !ok {
		return nil, time.Time{}, false
	}
	if s.Layer == nil {
		return nil, s.Created, true
	}
	l := *s.Layer
	return &l, s.Created, true
}

// Blob returns a layer of the cache. No byte is downloaded until its content is
// read; its digest, diffID, size and media type are those the cache records. It is
// a remote.MountableLayer, so pushing it to another repository of the same
// registry mounts it there instead of copying it through this machine.
func (c *Cache) Blob(info store.LayerInfo) (v1.Layer, error) {
	ref := c.ref.Context().Digest(info.Digest.String())
	rl, err := c.puller.Layer(c.ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("cache %s: layer %s: %w", c.ref, info.Digest, err)
	}
	if ml, ok := rl.(*remote.MountableLayer); ok {
		rl = ml.Layer
	}
	return &remote.MountableLayer{Layer: &remoteBlob{Layer: rl, info: info}, Reference: ref}, nil
}

// remoteBlob answers the layer's metadata from the cache record, without asking
// the registry.
type remoteBlob struct {
	v1.Layer
	info store.LayerInfo
}

func (b *remoteBlob) Digest() (v1.Hash, error)            { return b.info.Digest, nil }
func (b *remoteBlob) DiffID() (v1.Hash, error)            { return b.info.DiffID, nil }
func (b *remoteBlob) Size() (int64, error)                { return b.info.Size, nil }
func (b *remoteBlob) MediaType() (types.MediaType, error) { return b.info.MediaType, nil }
func (b *remoteBlob) Descriptor() (*v1.Descriptor, error) {
	return &v1.Descriptor{MediaType: b.info.MediaType, Size: b.info.Size, Digest: b.info.Digest}, nil
}

// Steps lists the cache's steps, sorted by key.
func (c *Cache) Steps() []Step {
	out := make([]Step, 0, len(c.steps))
	for _, s := range c.steps {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

var _ partial.Describable = (*remoteBlob)(nil)
