package report

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestPrefetchedBaseSameReport: an analysis that starts from a base merged
// ahead of time (every prefix of the image's layers, with each Top) is the
// whole-image report, and it takes the merge instead of applying the base again.
func TestPrefetchedBaseSameReport(t *testing.T) {
	ctx := context.Background()
	for name, img := range equivalenceImages(t) {
		for _, top := range []int{0, 2, -1} {
			want, err := AnalyzeContext(ctx, img, Options{Name: "img", Top: top})
			if err != nil {
				t.Fatal(err)
			}
			layers := sources(t, img, opens{})
			for n := 1; n <= len(layers); n++ {
				p := NewPrefetch(memCache{})
				p.Base(layers[:n])
				p.Base(layers[:n]) // a second stage on the same base gets a merge of its own
				lr := p.reader()
				for range 2 {
					got, err := lr.analyze(ctx, img, layers, Options{Name: "img", Top: top, Prefetch: p})
					if err != nil {
						t.Fatal(err)
					}
					if d := cmp.Diff(want, got); d != "" {
						t.Fatalf("%s, top %d, base of %d layers (-whole image +prefetched):\n%s", name, top, n, d)
					}
				}
				if left := len(p.bases[prefixKey(layers[:n])]); left != 0 {
					t.Errorf("%s, top %d, base of %d layers: %d merges left, want both taken", name, top, n, left)
				}
				lr.puts.Wait()
			}
		}
	}
}

// TestPrefetchSummary: a build's summary with the bases prefetched is the one
// without, whatever was prefetched (the builder's base, a base nobody uses, a
// base given after the summary began), and a top above what a merge kept is
// not served from it.
func TestPrefetchSummary(t *testing.T) {
	ctx := context.Background()
	base := buildImage(t, "", plantedLayers()...)
	builder, err := mutate.AppendLayers(base, layerOf(t, []tf{file("usr/bin/make", elf(100), 0o755), whiteout("etc/.wh.shadow")}))
	if err != nil {
		t.Fatal(err)
	}
	final, err := mutate.AppendLayers(base, layerOf(t, []tf{file("app/main", elf(80), 0o755)}))
	if err != nil {
		t.Fatal(err)
	}
	other := buildImage(t, "", testLayer{files: []tf{file("x", "1", 0o644)}})
	build := func() Build {
		return Build{Image: final, Layers: sources(t, final, opens{}),
			Discarded: [][]LayerSource{sources(t, builder, opens{}), sources(t, base, opens{})}}
	}
	wantFinal, wantSum, err := SummarizeBuild(ctx, build(), Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPrefetch(memCache{})
	bs := sources(t, base, opens{})
	p.Base(bs)
	p.Base(bs)
	p.Base(sources(t, other, opens{}))
	gotFinal, gotSum, err := SummarizeBuild(ctx, build(), Options{Name: "test", Prefetch: p})
	if err != nil {
		t.Fatal(err)
	}
	p.Base(bs) // too late: ignored
	if d := cmp.Diff(wantFinal, gotFinal); d != "" {
		t.Errorf("final report (-plain +prefetched):\n%s", d)
	}
	if d := cmp.Diff(wantSum, gotSum); d != "" {
		t.Errorf("summary (-plain +prefetched):\n%s", d)
	}
	if n := len(p.bases[prefixKey(bs)]); n != 0 {
		t.Errorf("%d merges of the base left, want both taken (final image, discarded builder)", n)
	}
	p2 := NewPrefetch(nil)
	p2.Base(bs)
	if u, _ := p2.take(bs, DefaultTop+1); u != nil {
		t.Error("a merge that kept DefaultTop hidden copies served a report of more")
	}
}

// TestPrefetchWaitsForStart: Base reads nothing before Start (a build served
// from the cache never calls it), and the summary's reader starts what waits.
func TestPrefetchWaitsForStart(t *testing.T) {
	img := buildImage(t, "", plantedLayers()...)
	o := opens{}
	layers := sources(t, img, o)
	p := NewPrefetch(nil)
	p.Base(layers)
	time.Sleep(100 * time.Millisecond)
	p.mu.Lock()
	n := len(o)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d layers opened before Start, want none", n)
	}
	p.reader()
	if len(o) != len(layers) {
		t.Errorf("%d layers opened once the summary began, want %d", len(o), len(layers))
	}
}
