package regcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/regcache"
)

// putBlob uploads data monolithically and returns its descriptor.
func putBlob(t *testing.T, host, repo string, data []byte, mt types.MediaType) v1.Descriptor {
	t.Helper()
	d, size, _ := v1.SHA256(bytes.NewReader(data))
	u := fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?digest=%s", host, repo, d)
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("uploading blob: %s", resp.Status)
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: d}
}

func putManifest(t *testing.T, host, repo, tag string, m any) {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), bytes.NewReader(data))
	req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("putting manifest: %s", resp.Status)
	}
}

// TestOpenRefusesHostileCaches: whatever a registry serves, Open either returns a
// cache whose every layer is described by the manifest, or an ErrInvalid error.
func TestOpenRefusesHostileCaches(t *testing.T) {
	host, _, reg := newRegistry(t)
	layerData := []byte("not really a tar, but a blob")
	layer := putBlob(t, host, "evil/cache", layerData, types.OCILayer)
	goodLayer := func() map[string]any {
		return map[string]any{"digest": layer.Digest.String(), "diffID": layer.Digest.String(), "size": layer.Size, "mediaType": string(layer.MediaType)}
	}
	k := key("k")
	cases := []struct {
		name      string
		config    any // marshalled to JSON unless []byte
		configMT  types.MediaType
		layers    []v1.Descriptor
		sizeDelta int64 // added to the config's true size in the manifest
	}{
		{name: "an ordinary image config", config: map[string]any{"architecture": "amd64", "os": "linux"}, configMT: types.OCIConfigJSON},
		{name: "another version", config: map[string]any{"version": 2, "steps": map[string]any{}}},
		{name: "not JSON", config: []byte("{\"version\":1,")},
		{name: "key with a slash", config: map[string]any{"version": 1, "steps": map[string]any{"../../etc/passwd": map[string]any{}}}},
		{name: "short key", config: map[string]any{"version": 1, "steps": map[string]any{"ab": map[string]any{}}}},
		{name: "upper-case key", config: map[string]any{"version": 1, "steps": map[string]any{strings.ToUpper(k): map[string]any{}}}},
		{name: "null step", config: map[string]any{"version": 1, "steps": map[string]any{k: nil}}},
		{name: "layer not in the manifest", config: map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": goodLayer()}}}},
		{name: "layer size differs from the manifest", layers: []v1.Descriptor{{MediaType: layer.MediaType, Size: layer.Size + 1, Digest: layer.Digest}},
			config: map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": goodLayer()}}}},
		{name: "layer of a non-layer media type", layers: []v1.Descriptor{{MediaType: "text/plain", Size: layer.Size, Digest: layer.Digest}},
			config: map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": func() map[string]any {
				l := goodLayer()
				l["mediaType"] = "text/plain"
				return l
			}()}}}},
		{name: "foreign layer", layers: []v1.Descriptor{{MediaType: types.DockerForeignLayer, Size: layer.Size, Digest: layer.Digest}},
			config: map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": func() map[string]any {
				l := goodLayer()
				l["mediaType"] = string(types.DockerForeignLayer)
				return l
			}()}}}},
		{name: "malformed diffID", layers: []v1.Descriptor{layer},
			config: map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": func() map[string]any {
				l := goodLayer()
				l["diffID"] = "sha256:../../x"
				return l
			}()}}}},
		{name: "config longer than the manifest says", config: map[string]any{"version": 1, "steps": map[string]any{}}, sizeDelta: -5},
		{name: "config bigger than the limit", config: map[string]any{"version": 1, "steps": map[string]any{}}, sizeDelta: regcache.MaxConfigSize},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, ok := tc.config.([]byte)
			if !ok {
				var err error
				if raw, err = json.Marshal(tc.config); err != nil {
					t.Fatal(err)
				}
			}
			mt := tc.configMT
			if mt == "" {
				mt = regcache.ConfigMediaType
			}
			cfg := putBlob(t, host, "evil/cache", raw, mt)
			cfg.Size += tc.sizeDelta
			tag := fmt.Sprintf("case%d", i)
			putManifest(t, host, "evil/cache", tag, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: tc.layers})
			_, _, err := regcache.Open(context.Background(), reg, host+"/evil/cache:"+tag)
			if !errors.Is(err, regcache.ErrInvalid) {
				t.Fatalf("Open = %v, want an ErrInvalid error", err)
			}
			if !strings.Contains(err.Error(), host+"/evil/cache:"+tag) {
				t.Errorf("the error does not name the cache: %v", err)
			}
		})
	}
	t.Run("the same cache, well formed, opens", func(t *testing.T) {
		raw, _ := json.Marshal(map[string]any{"version": 1, "steps": map[string]any{k: map[string]any{"layer": goodLayer()}}})
		cfg := putBlob(t, host, "evil/cache", raw, regcache.ConfigMediaType)
		putManifest(t, host, "evil/cache", "good", v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
		c, found, err := regcache.Open(context.Background(), reg, host+"/evil/cache:good")
		if err != nil || !found || c.Len() != 1 {
			t.Fatalf("Open = %v (found %v)", err, found)
		}
	})
}
