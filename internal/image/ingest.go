package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/report"
	"github.com/slimbuild/slimbuild/internal/store"
)

// storeUnpacked writes img into st with every layer unpacked: each layer the
// store lacks (as a blob or as a directory) is streamed once from img,
// stored as given and unpacked while its digest and diffID are checked
// (store.IngestLayer), up to three layers at once; then the config and the
// manifest are written. It returns the manifest digest. Progress goes to
// logf, called from one goroutine at a time.
func storeUnpacked(ctx context.Context, st *store.Store, img v1.Image, logf func(string, ...any)) (v1.Hash, error) {
	m, err := img.Manifest()
	if err != nil {
		return v1.Hash{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return v1.Hash{}, fmt.Errorf("config lists %d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 3)
		mu   sync.Mutex
		errs []error
	)
	// Layers arrive in parallel; logf hears from one at a time.
	var logMu sync.Mutex
	serial := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logf(format, args...)
	}
	for k, desc := range m.Layers {
		if !desc.MediaType.IsDistributable() {
			continue // foreign layer: referenced, never stored
		}
		diffID := cf.RootFS.DiffIDs[k]
		if _, ok := st.LayerDirPath(diffID); ok && st.HasBlob(desc.Digest) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ingestOne(ctx, st, img, desc, diffID, serial); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return v1.Hash{}, err
	}
	return st.WriteImage(img)
}

// ingestOne stores and unpacks one layer of img. A layer whose blob the store
// has already is unpacked from that blob.
func ingestOne(ctx context.Context, st *store.Store, img v1.Image, desc v1.Descriptor, diffID v1.Hash, logf func(string, ...any)) error {
	start := time.Now()
	if st.HasBlob(desc.Digest) {
		l, err := st.Layer(store.LayerInfo{DiffID: diffID, Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType})
		if err != nil {
			return err
		}
		if _, err := st.LayerDir(l); err != nil {
			return err
		}
		logf("unpacked layer %s in %s", short(diffID), since(start))
		return nil
	}
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	logf("fetching layer %s (%s)", short(desc.Digest), report.HumanSize(desc.Size))
	got, err := ingestScanned(ctx, st, rc, store.IngestSpec{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, DiffID: diffID})
	if err != nil {
		return err
	}
	logf("unpacked layer %s: %s in %s", short(diffID), report.HumanSize(got.TarBytes), since(start))
	return nil
}

// ingestTar stores the uncompressed layer tar r as an uncompressed blob
// (digest = diffID) and unpacks it in the same pass. A compressed source is
// decompressed on the way (the store's read-ahead overlaps it with writing).
// The same stream is analysed for the build summary (ingestScanned).
func ingestTar(ctx context.Context, st *store.Store, r io.Reader) (store.Ingested, error) {
	d, err := layer.Decompress(r)
	if err != nil {
		return store.Ingested{}, err
	}
	defer d.Close()
	return ingestScanned(ctx, st, d, store.IngestSpec{MediaType: types.OCIUncompressedLayer})
}

// ingestScanned is st.IngestLayer that also analyses the layer's tar for the
// build summary on the way and keeps the analysis under the diffID.
func ingestScanned(ctx context.Context, st *store.Store, r io.Reader, spec store.IngestSpec) (store.Ingested, error) {
	scan := startScan()
	spec.Tar = scan
	got, err := st.IngestLayer(ctx, r, spec)
	a := scan.finish()
	if err != nil {
		return store.Ingested{}, err
	}
	if a != nil {
		// A lost analysis only costs the summary a read of the layer.
		_ = a.Keep(st, got.DiffID.String())
	}
	return got, nil
}

// layerScan analyses a layer tar written to it, in a goroutine of its own. A tar
// that the analysis cannot read is drained and gives no analysis: the ingest
// decides what the stream is worth.
type layerScan struct {
	*io.PipeWriter
	done chan struct{}
	a    *report.LayerAnalysis
}

func startScan() *layerScan {
	pr, pw := io.Pipe()
	s := &layerScan{PipeWriter: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		// Read in large pieces: each write to the pipe then takes one hand-over.
		a, err := report.ScanLayer(bufio.NewReaderSize(pr, 1<<20))
		if err != nil {
			io.Copy(io.Discard, pr)
			return
		}
		s.a = a
	}()
	return s
}

// finish ends the stream and returns the analysis, nil when there is none.
func (s *layerScan) finish() *report.LayerAnalysis {
	s.Close()
	<-s.done
	return s.a
}

// short is a digest cut for progress lines: "sha256:abcdef012345".
func short(h v1.Hash) string {
	s := h.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}
