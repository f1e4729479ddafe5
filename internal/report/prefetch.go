package report

import (
	"strings"
	"sync"
)

// Prefetch does a build summary's reading and merging ahead of time: a build
// hands it each stage's base layers as soon as they are known, and it reads
// their analyses (from the cache, or the layers) and merges them while the
// build runs. SummarizeBuild, given it in Options, then starts every stage
// whose layers begin with a prefetched base from that merge, and merges only
// the layers the stage added. The summary is the same with or without it.
//
// Base may be called from several goroutines; the work is done one base at a
// time, in the background, and Base does nothing once the summary has begun.
// Memory is what the summary would use anyway.
type Prefetch struct {
	mu sync.Mutex // held while a base is merged, and by take
	wg sync.WaitGroup
	lr *layerReader
	// bases holds merged bases by the IDs of their layers, one per Base call:
	// a merge is used by one analysis, which goes on applying layers to it.
	bases map[string][]*unionFS
	// closed is set once the summary reads through lr: Base does nothing then.
	closed bool
	// start is closed by Start: merges wait for it.
	start     chan struct{}
	startOnce sync.Once
}

// NewPrefetch prepares bases with c as the layer analysis cache (see Options.Cache).
func NewPrefetch(c Cache) *Prefetch {
	return &Prefetch{lr: newLayerReader(c), bases: map[string][]*unionFS{}, start: make(chan struct{})}
}

// Start lets the merges begin. Until then Base only notes its bases: a build
// served whole from the cache has its summary cached too, and should spend
// nothing on them (a build calls Start when a step first runs).
func (p *Prefetch) Start() { p.startOnce.Do(func() { close(p.start) }) }

// Base merges layers, bottom first, in the background. Layers without an ID
// are not prefetched (nothing could match them later), and a layer that cannot
// be read is left for the summary, which says why.
func (p *Prefetch) Base(layers []LayerSource) {
	if len(layers) == 0 || prefixKey(layers) == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-p.start
		p.mu.Lock()
		defer p.mu.Unlock()
		// As analyze does, with the largest number of hidden copies a summary lists.
		u := newUnionFS(len(layers), DefaultTop)
		for i, l := range layers {
			ls, err := p.lr.scan(i, l)
			if err != nil {
				return
			}
			u.apply(i, ls)
		}
		k := prefixKey(layers)
		p.bases[k] = append(p.bases[k], u)
	}()
}

// reader waits for the bases under way and returns the reader they used, with
// what they read.
func (p *Prefetch) reader() *layerReader {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Start() // what was not merged yet is merged now, as the summary would
	p.wg.Wait()
	return p.lr
}

// take returns a merge of the longest prefetched base that layers begin with,
// made ready to go on to len(layers) layers with top (see Options.Top), and how
// many layers it holds; nil and 0 when there is none.
func (p *Prefetch) take(layers []LayerSource, top int) (*unionFS, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(layers); n > 0; n-- {
		k := prefixKey(layers[:n])
		us := p.bases[k]
		if k == "" || len(us) == 0 {
			continue
		}
		u := us[len(us)-1]
		if top > u.hidden.n {
			return nil, 0 // it kept fewer hidden copies than this report lists
		}
		p.bases[k] = us[:len(us)-1]
		u.hidden.shrink(top)
		u.hiddenBy = append(u.hiddenBy, make([]int64, len(layers)-n)...)
		return u, n
	}
	return nil, 0
}

// prefixKey names a list of layers by their IDs, "" when one has none.
func prefixKey(layers []LayerSource) string {
	ids := make([]string, len(layers))
	for i, l := range layers {
		if l.ID == "" {
			return ""
		}
		ids[i] = l.ID
	}
	return strings.Join(ids, "\x00")
}
