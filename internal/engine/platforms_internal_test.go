package engine

import (
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
)

// TestPlatformKeys: a stage's key covers its own platform and the target's,
// so a FROM --platform=$BUILDPLATFORM stage is not shared between two targets
// and two targets never share a step; the config says the stage's platform.
// (No root: only the keys.)
func TestPlatformKeys(t *testing.T) {
	amd := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	armv7 := ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	key := func(stage, target ocispecs.Platform) (string, *stageState) {
		b := &builder{plan: &dockerfile.Plan{Platform: target}}
		s := &stageState{key: cachekey.Of("scratch")}
		b.setPlatform(s, &dockerfile.Stage{On: stage})
		return s.key, s
	}
	seen := map[string]string{}
	for _, c := range []struct {
		name          string
		stage, target ocispecs.Platform
	}{
		{"amd64", amd, amd},
		{"arm64", arm, arm},
		{"arm/v7", armv7, armv7},
		{"amd64 stage of an arm64 build", amd, arm},
		{"arm64 stage of an amd64 build", arm, amd},
	} {
		k, s := key(c.stage, c.target)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s share a key", c.name, prev)
		}
		seen[k] = c.name
		if s.Image.OS != c.stage.OS || s.Image.Architecture != c.stage.Architecture || s.Image.Variant != c.stage.Variant {
			t.Errorf("%s: config %s/%s/%s", c.name, s.Image.OS, s.Image.Architecture, s.Image.Variant)
		}
		if again, _ := key(c.stage, c.target); again != k {
			t.Errorf("%s: the key is not stable", c.name)
		}
	}
}
