package dockerfile

import (
	"fmt"
	goruntime "runtime"

	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// HostPlatform is the platform slimbuild runs on: linux and the host's
// architecture (BuildKit's BUILDPLATFORM, and the default target).
func HostPlatform() ocispecs.Platform {
	return platforms.Normalize(ocispecs.Platform{OS: "linux", Architecture: goruntime.GOARCH})
}

// ParsePlatform parses os/arch[/variant] as BuildKit does, normalised
// (aarch64 is arm64, arm is arm/v7, arm64/v8 is arm64). Only linux is accepted:
// slimbuild runs what it builds in Linux containers.
func ParsePlatform(s string) (ocispecs.Platform, error) {
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	}
	p = platforms.Normalize(p)
	if p.OS != "linux" {
		return ocispecs.Platform{}, fmt.Errorf("platform %q: slimbuild builds linux images only", s)
	}
	return p, nil
}

// FormatPlatform writes p as BuildKit writes TARGETPLATFORM: os/arch[/variant].
func FormatPlatform(p ocispecs.Platform) string { return platforms.Format(p) }

// ImagePlatform is p as go-containerregistry (and so package image) spells it.
func ImagePlatform(p ocispecs.Platform) v1.Platform {
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}

// SpecPlatform is ImagePlatform's inverse; the zero value stays zero (the host's).
func SpecPlatform(p v1.Platform) ocispecs.Platform {
	return ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}

// platformArgs are the ARGs BuildKit defines by itself for a build on build
// for target: in the global scope, and in a stage that declares them.
func platformArgs(build, target ocispecs.Platform) map[string]string {
	return map[string]string{
		"TARGETPLATFORM": platforms.Format(target), "TARGETOS": target.OS, "TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant,
		"BUILDPLATFORM": platforms.Format(build), "BUILDOS": build.OS, "BUILDARCH": build.Architecture, "BUILDVARIANT": build.Variant,
	}
}

// PlatformArgs are the automatic platform ARGs of a build for the host.
func PlatformArgs() map[string]string {
	return platformArgs(HostPlatform(), HostPlatform())
}
