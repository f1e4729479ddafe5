package image

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestAssembleBytes pins the bytes the assembler gives the engine's images:
// the digests below are those the engine's own assembler (before it became
// this one) gave for the same config and layers, so a change in field order,
// defaults or encoding shows here before it changes every build's digest.
func TestAssembleBytes(t *testing.T) {
	layers := []v1.Layer{
		static.NewLayer([]byte("layer one"), types.OCILayer),
		static.NewLayer([]byte("layer two"), types.OCIUncompressedLayer),
	}
	ann := map[string]string{"org.opencontainers.image.title": "t", "a": "b"}
	tests := []struct {
		name                            string
		arch                            string
		created                         time.Time
		config, manifest, withAnnotated string
	}{
		{"host arch, 1970", "", time.Unix(0, 0),
			"sha256:7939d6da67cdc20665f8efb111c1cab83a35f9cd6951420102f3310e1b23d840",
			"sha256:5ffb6d1c2300fddb2fc224e83d6b713becd88d94f6329079a89fc61e71f614b9",
			"sha256:f0cac548c7473d5abc9b34d3838f1e4c9b3905618eb9681a12bdf11b6e9ba99f"},
		{"epoch", "arm64", time.Unix(1_700_000_000, 0),
			"sha256:4496ccca1b8c02fab5fe53052b2a9a7038acb8d53f1a66c0c8f93b35194f245d",
			"sha256:154a41aefa21088e4e3d07fd9e399bf062d0828fb6f4edea0b16e8a586c7346b",
			"sha256:402a1a90c88e23374fcbfc203c83745d53681ac079c0e2d0b272201afc2ee545"},
		{"base time", "amd64", time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)),
			"sha256:c06777a557647b4233f47c5d278387700cbb094e66798213e579eb4bea3b773a",
			"sha256:10a4b70e57c0e2fb314dc7320cc6b8735125da199adbc8b3fc83ec935bf9ce24",
			"sha256:ecb43232d48a6985717972bf95477e7c3ccbb4bd1b8b2a60e06a9db3a6918022"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.arch == "" && runtime.GOARCH != "amd64" {
				t.Skip("the pinned digests default the architecture to amd64")
			}
			cfg := &v1.ConfigFile{Architecture: tt.arch, Created: v1.Time{Time: tt.created.UTC()}}
			cfg.Config.Env = []string{"A=1"}
			cfg.History = []v1.History{{CreatedBy: "x", Created: v1.Time{Time: time.Unix(5, 0)}}}
			before := cfg.DeepCopy()
			for _, c := range []struct {
				ann      map[string]string
				manifest string
			}{{nil, tt.manifest}, {map[string]string{}, tt.manifest}, {ann, tt.withAnnotated}} {
				img, err := Assemble(cfg, layers, c.ann)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(img, validate.Fast); err != nil {
					t.Fatalf("validate: %v", err)
				}
				cn, err := img.ConfigName()
				if err != nil {
					t.Fatal(err)
				}
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				if cn.String() != tt.config || d.String() != c.manifest {
					t.Errorf("annotations %v: config %s, manifest %s; want %s, %s", c.ann, cn, d, tt.config, c.manifest)
				}
				got, err := img.Layers()
				if err != nil {
					t.Fatal(err)
				}
				for i := range layers {
					if got[i] != layers[i] {
						t.Errorf("layer %d is a wrapper, want the layer given", i)
					}
				}
			}
			if cfg.Architecture != before.Architecture || cfg.RootFS.Type != before.RootFS.Type {
				t.Errorf("Assemble changed its argument: %+v", cfg)
			}
		})
	}
}

// TestAssembleAsMutate: an image assembled here is, byte for byte, the one
// go-containerregistry's mutate makes of the same config, layer and history
// (what rootfs imports made before they used Assemble): importing the same
// rootfs keeps its digest, and the build cache keys on it stay valid.
func TestAssembleAsMutate(t *testing.T) {
	l := static.NewLayer([]byte("rootfs"), types.OCIUncompressedLayer)
	now := v1.Time{Time: time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)}
	hist := v1.History{Created: now, CreatedBy: "slimbuild import", Comment: "imported from x.tar"}
	cfg := &v1.ConfigFile{Architecture: "riscv64", OS: "linux", Created: now, RootFS: v1.RootFS{Type: "layers"}}

	ref := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	ref = mutate.ConfigMediaType(ref, types.OCIConfigJSON)
	ref, err := mutate.ConfigFile(ref, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref, err = mutate.Append(ref, mutate.Addendum{Layer: l, MediaType: types.OCIUncompressedLayer, History: hist})
	if err != nil {
		t.Fatal(err)
	}

	withHist := cfg.DeepCopy()
	withHist.History = append(withHist.History, hist)
	img, err := Assemble(withHist, []v1.Layer{l}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(v1.Image) ([]byte, error){v1.Image.RawConfigFile, v1.Image.RawManifest} {
		want, err := f(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f(img)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("assembled\n%s\nmutate\n%s", got, want)
		}
	}
}

// TestLazy: a lazy image is made once, on first use, and keeps its error.
func TestLazy(t *testing.T) {
	calls := 0
	boom := errors.New("boom")
	img := Lazy(func() (v1.Image, error) { calls++; return nil, boom })
	if calls != 0 {
		t.Fatalf("made before use")
	}
	if _, err := img.Digest(); !errors.Is(err, boom) {
		t.Errorf("Digest: %v, want boom", err)
	}
	if _, err := img.Layers(); !errors.Is(err, boom) {
		t.Errorf("Layers: %v, want boom", err)
	}
	if calls != 1 {
		t.Errorf("made %d times, want once", calls)
	}
}

// TestAssembleConfig: a config given as bytes is kept byte for byte, and one
// whose diffIDs are not its layers' is refused.
func TestAssembleConfig(t *testing.T) {
	l := static.NewLayer([]byte("layer"), types.OCIUncompressedLayer)
	diffID, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	// Key order and spacing no encoder of ours would write.
	raw := []byte(`{"rootfs": {"diff_ids": ["` + diffID.String() + `"], "type": "layers"}, "os": "linux", "architecture": "amd64"}`)
	img, err := AssembleConfig(raw, []v1.Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.RawConfigFile(); string(got) != string(raw) {
		t.Errorf("config re-encoded:\n%s\nwant\n%s", got, raw)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if want, _, _ := v1.SHA256(bytes.NewReader(raw)); m.Config.Digest != want || m.Config.Size != int64(len(raw)) {
		t.Errorf("manifest names config %s (%d bytes), want %s (%d)", m.Config.Digest, m.Config.Size, want, len(raw))
	}
	other := static.NewLayer([]byte("another layer"), types.OCIUncompressedLayer)
	if _, err := AssembleConfig(raw, []v1.Layer{other}); err == nil {
		t.Error("a config whose diffID is not its layer's was assembled")
	}
	if _, err := AssembleConfig(raw, []v1.Layer{l, l}); err == nil {
		t.Error("a config listing one diffID was assembled over two layers")
	}
}
