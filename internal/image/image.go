package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slimbuild/slimbuild/internal/store"
)

// Tag names h in st with each of names, normalised (NormalizeName).
func Tag(st *store.Store, names []string, h v1.Hash) error {
	for _, t := range names {
		n, err := NormalizeName(t)
		if err != nil {
			return err
		}
		if err := st.Tag(n, h); err != nil {
			return fmt.Errorf("tagging %s: %w", n, err)
		}
	}
	return nil
}

// NormalizeName returns the full name docker would use for s:
// busybox -> docker.io/library/busybox:latest, localhost:5000/x -> localhost:5000/x:latest,
// name@sha256:... keeps its digest (and its tag, when both are given).
func NormalizeName(s string) (string, error) {
	if s == "" {
		return "", errors.New("normalizing image name: empty name")
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return "", fmt.Errorf("normalizing image name %q: %w", s, err)
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + ref.Context().RepositoryStr()
	var out, check string
	switch r := ref.(type) {
	case name.Tag:
		out = repo + ":" + r.TagStr()
		check = out
	case name.Digest:
		out = repo + "@" + r.DigestStr()
		check = out
		base, _, _ := strings.Cut(s, "@")
		last := base[strings.LastIndex(base, "/")+1:]
		if _, tag, ok := strings.Cut(last, ":"); ok {
			out = repo + ":" + tag + "@" + r.DigestStr()
		}
	default:
		return "", fmt.Errorf("normalizing image name %q: unexpected reference kind %T", s, ref)
	}
	// The full form must parse too (e.g. "library/" can push a name past the length limit).
	if _, err := name.ParseReference(check); err != nil {
		return "", fmt.Errorf("normalizing image name %q: %w", s, err)
	}
	return out, nil
}

// parseRef parses a normalised name for go-containerregistry.
func parseRef(s string) (name.Reference, error) {
	n, err := NormalizeName(s)
	if err != nil {
		return nil, err
	}
	// ParseReference cannot take tag and digest together; the digest wins.
	if i := strings.Index(n, "@"); i >= 0 {
		base := n[:i]
		if j := strings.LastIndex(base, ":"); j > strings.LastIndex(base, "/") {
			n = base[:j] + n[i:]
		}
	}
	ref, err := name.ParseReference(n)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	return ref, nil
}

// Platform is the platform pulled from multi-platform images.
func Platform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

func nopLog(string, ...any) {}

type logfKey struct{}

// WithLogf returns a context that makes Resolve and Open report pull progress to logf.
func WithLogf(ctx context.Context, logf func(string, ...any)) context.Context {
	return context.WithValue(ctx, logfKey{}, logf)
}

func logfFrom(ctx context.Context) func(string, ...any) {
	if f, ok := ctx.Value(logfKey{}).(func(string, ...any)); ok && f != nil {
		return f
	}
	return nopLog
}

// Pull fetches ref (for linux/runtime.GOARCH) with the docker config credentials,
// streams each layer it lacks into st, unpacking it on the way (see storeUnpacked),
// tags it with its normalised name and returns the stored image.
func Pull(ctx context.Context, st *store.Store, ref string, logf func(string, ...any)) (v1.Image, error) {
	return pullFor(ctx, st, ref, Platform(), logf)
}

// pullFor is Pull for platform p; an image for another platform than the
// host's joins the name's index instead of replacing the name.
func pullFor(ctx context.Context, st *store.Store, ref string, p v1.Platform, logf func(string, ...any)) (v1.Image, error) {
	if logf == nil {
		logf = nopLog
	}
	n, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	reg := &Registry{}
	r, err := reg.Ref(n)
	if err != nil {
		return nil, err
	}
	logf("pulling %s", n)
	img, err := remote.Image(r, append(reg.Options(ctx), remote.WithPlatform(p))...)
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", n, err)
	}
	start := time.Now()
	h, err := storeUnpacked(ctx, st, img, logf)
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", n, err)
	}
	if p.Equals(Platform()) {
		err = st.Tag(n, h)
	} else {
		_, err = st.AddPlatform(n, h)
	}
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", n, err)
	}
	logf("pulled %s: %s in %s", n, h, since(start))
	return st.Image(h.String())
}

// fromStore finds ref in st by digest or normalised name.
func fromStore(st *store.Store, ref string) (v1.Image, error) {
	if strings.HasPrefix(ref, "sha256:") {
		return st.Image(ref)
	}
	n, err := NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	return st.Image(n)
}

// Resolve returns the image ref from the store, pulling it when it is missing and
// pull is set. The error for a missing image says how to get one.
// Progress of a pull goes to the logger set with WithLogf.
func Resolve(ctx context.Context, st *store.Store, ref string, pull bool) (v1.Image, error) {
	return ResolveFor(ctx, st, ref, pull, Platform())
}

// ResolveFor is Resolve for platform p: a name in the store that is an index
// gives its image for p; a single image must be for p. An image pulled for
// another platform than the host's joins the name's index (store.AddPlatform).
func ResolveFor(ctx context.Context, st *store.Store, ref string, pull bool, p v1.Platform) (v1.Image, error) {
	img, err := fromStoreFor(st, ref, p)
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("resolving %q: %w", ref, err)
	}
	n, nerr := NormalizeName(ref)
	if nerr != nil {
		n = ref
	}
	how := fmt.Sprintf("import one with \"slimbuild import ROOTFS %s\"", ref)
	if !p.Equals(Platform()) {
		how = fmt.Sprintf("import one with \"slimbuild import --platform %s ROOTFS %s\"", p.String(), ref)
	}
	if !pull {
		return nil, fmt.Errorf("image %q is not in the store for %s and pulling is disabled (%w): %s", n, p.String(), err, how)
	}
	img, perr := pullFor(ctx, st, ref, p, logfFrom(ctx))
	if perr != nil {
		return nil, fmt.Errorf("image %q is not in the store for %s and could not be pulled (%w): %s", n, p.String(), perr, how)
	}
	return img, nil
}

// fromStoreFor finds ref in st, by digest or normalised name, for platform p.
func fromStoreFor(st *store.Store, ref string, p v1.Platform) (v1.Image, error) {
	if !strings.HasPrefix(ref, "sha256:") {
		n, err := NormalizeName(ref)
		if err != nil {
			return nil, err
		}
		ref = n
	}
	return st.ImageFor(ref, p)
}

// Repull pulls ref from its registry even when the store has it (buildx
// --pull), reporting to the logger set with WithLogf.
func Repull(ctx context.Context, st *store.Store, ref string) (v1.Image, error) {
	return RepullFor(ctx, st, ref, Platform())
}

// RepullFor is Repull for platform p (see ResolveFor).
func RepullFor(ctx context.Context, st *store.Store, ref string, p v1.Platform) (v1.Image, error) {
	img, err := pullFor(ctx, st, ref, p, logfFrom(ctx))
	if err != nil {
		return nil, fmt.Errorf("pulling %q (--pull): %w", ref, err)
	}
	return img, nil
}

// Open returns the image ref names, trying in order: a name or digest in the store,
// a path to an OCI layout directory, OCI archive or docker-archive, then a registry
// reference (pulled into the store). An OCI archive is copied into the store (unnamed).
// Progress of a pull goes to the logger set with WithLogf.
func Open(ctx context.Context, st *store.Store, ref string) (v1.Image, error) {
	img, err := fromStore(st, ref)
	if err == nil {
		return img, nil
	}
	if _, serr := os.Stat(ref); serr == nil {
		img, err := openPath(st, ref)
		if err != nil {
			return nil, fmt.Errorf("opening %q: %w", ref, err)
		}
		return img, nil
	}
	if _, nerr := NormalizeName(ref); nerr != nil {
		return nil, fmt.Errorf("opening %q: not in the store, not a file and not an image reference: %w", ref, nerr)
	}
	return Pull(ctx, st, ref, logfFrom(ctx))
}
