package regcache

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FuzzParseConfig: a config the parser accepts names only well-formed keys, and
// only layers that the manifest lists with the same size and media type.
func FuzzParseConfig(f *testing.F) {
	d := v1.Hash{Algorithm: "sha256", Hex: "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"}
	f.Add([]byte(`{"version":1,"steps":{}}`))
	f.Add([]byte(`{"version":1,"steps":{"` + d.Hex + `":{"created":"2026-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`{"version":1,"steps":{"` + d.Hex + `":{"layer":{"digest":"` + d.String() + `","diffID":"` + d.String() + `","size":10,"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}}}}`))
	layers := []v1.Descriptor{{MediaType: types.OCILayer, Size: 10, Digest: d}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		steps, err := parseConfig(raw, layers)
		if err != nil {
			return
		}
		for k, s := range steps {
			if !validKey(k) || s == nil || s.Key != k {
				t.Fatalf("accepted step %q: %+v", k, s)
			}
			if s.Layer == nil {
				continue
			}
			if !validHash(s.Layer.Digest) || !validHash(s.Layer.DiffID) || s.Layer.Digest != d || s.Layer.Size != 10 || s.Layer.MediaType != types.OCILayer {
				t.Fatalf("accepted layer %+v", s.Layer)
			}
		}
	})
}
