package image

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestResolver: a name is resolved once per platform (the registry changing
// afterwards does not change what the build sees); NoPull never asks the
// registry; Pull asks it again even when the store has the name.
func TestResolver(t *testing.T) {
	requireRoot(t) // layers are unpacked with their owners
	ctx := context.Background()
	host := startRegistry(t)
	ref := host + "/test/resolve:v1"
	push := func(img v1.Image) {
		t.Helper()
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	first, second := ociRandom(t), ociRandom(t)
	push(first)
	p := Platform()

	t.Run("no pull", func(t *testing.T) {
		r := &Resolver{Store: openStore(t), NoPull: true}
		_, err := r.Resolve(ctx, ref, p)
		if err == nil || !strings.Contains(err.Error(), "pulling is disabled") {
			t.Fatalf("error %v, want pulling is disabled", err)
		}
	})
	t.Run("once per build", func(t *testing.T) {
		var logs int
		st := openStore(t)
		r := &Resolver{Store: st, Logf: func(string, ...any) { logs++ }}
		img, err := r.Resolve(ctx, ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, img) != digestOf(t, first) {
			t.Fatal("resolved another image than the one pushed")
		}
		if logs == 0 {
			t.Error("the pull reported no progress to Logf")
		}
		// Neither the store nor the registry has the first image under the
		// name any more: only the resolver's memory does.
		n, err := NormalizeName(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Untag(n); err != nil {
			t.Fatal(err)
		}
		push(second)
		again, err := r.Resolve(ctx, ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, again) != digestOf(t, first) {
			t.Error("a second ask of the same name saw the registry's new image")
		}
	})
	t.Run("pull again", func(t *testing.T) {
		st := openStore(t)
		push(first)
		if _, err := (&Resolver{Store: st}).Resolve(ctx, ref, p); err != nil {
			t.Fatal(err)
		}
		push(second)
		stored, err := (&Resolver{Store: st}).Resolve(ctx, ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, stored) != digestOf(t, first) {
			t.Error("without Pull, the stored image was not used")
		}
		pulled, err := (&Resolver{Store: st, Pull: true}).Resolve(ctx, ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, pulled) != digestOf(t, second) {
			t.Error("with Pull, the registry's new image was not pulled")
		}
	})
}

// TestResolverNamedLayout: an OCI layout named context is read once per
// platform: later asks do not read the layout again.
func TestResolverNamedLayout(t *testing.T) {
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	src := ociRandom(t)
	if err := lp.AppendImage(src, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Store: openStore(t)}
	spec := NamedContext{Layout: dir, LayoutTag: "v1"}
	img, err := r.Named(context.Background(), spec, Platform())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, src) {
		t.Fatal("Named read another image than the layout's")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	again, err := r.Named(context.Background(), spec, Platform())
	if err != nil {
		t.Fatalf("a second ask read the layout again: %v", err)
	}
	if digestOf(t, again) != digestOf(t, src) {
		t.Error("a second ask gave another image")
	}
}
