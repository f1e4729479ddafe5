package slim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/runtime"
	"github.com/slimbuild/slimbuild/internal/snapshot"
	"github.com/slimbuild/slimbuild/internal/store"
)

// BuildOptions tune Build.
type BuildOptions struct {
	Options
	// Tag, if set, names the slim image (already normalised, as store.Tag wants)
	// once it is written and, unless NoVerify, verified.
	Tag string
	// NoVerify skips running both images and comparing them.
	NoVerify bool
	// VerifyArgs replace the image's CMD for the verification runs; empty
	// means run the image as it is. Ignored when Probes are given.
	VerifyArgs []string
	// Probes exercise the original (watched through fanotify: what it opens
	// joins the closure) and then both images (verification compares them
	// probe by probe). Empty means one probe: VerifyArgs.
	Probes []Probe
	// NoObserve keeps the closure static: the original is not watched.
	NoObserve bool
	// Compression of the slim layer; gzip when empty.
	Compression store.Compression
	// Runc is the runc binary for verification; "runc" when empty.
	Runc string
	// VerifyTimeout bounds each verification run; DefaultVerifyTimeout when 0.
	// A run that takes longer is stopped and Build fails with ErrVerifyTimeout.
	VerifyTimeout time.Duration
}

// DefaultVerifyTimeout is how long a verification run may take by default.
const DefaultVerifyTimeout = 60 * time.Second

// ErrVerifyTimeout is wrapped by the error of a verification run that did not
// exit in time.
var ErrVerifyTimeout = errors.New("verification run did not exit in time")

// maxShownOutput is how much of each output stream a RunOutput keeps to show;
// the streams are compared whole, by their digests.
const maxShownOutput = 64 << 10

// Report describes what Build did.
type Report struct {
	Closure     *Result `json:"closure"`
	FilesBefore int     `json:"files_before"` // every path of the original filesystem
	FilesAfter  int     `json:"files_after"`  // every path of the slim layer, parents included
	BytesBefore int64   `json:"bytes_before"` // regular file bytes
	BytesAfter  int64   `json:"bytes_after"`
	// Dropped lists the paths of the original that the slim image does not
	// have, sorted.
	Dropped  []string `json:"dropped"`
	Verified bool     `json:"verified"`
	ExitCode int      `json:"exit_code,omitempty"` // of the verification runs
}

// ReductionPercent is how much of the original's file bytes the slim image drops.
func (r *Report) ReductionPercent() float64 {
	if r.BytesBefore == 0 {
		return 0
	}
	return 100 * float64(r.BytesBefore-r.BytesAfter) / float64(r.BytesBefore)
}

// RunOutput is what one verification run printed: the start of each stream
// (at most 64 KiB, to show), and the size and sha256 of the whole of it (to
// compare). Two runs behave alike when their RunOutputs are equal.
type RunOutput struct {
	ExitCode     int
	Stdout       string
	Stderr       string
	StdoutSize   int64
	StderrSize   int64
	StdoutDigest string
	StderrDigest string
}

// capture keeps the size, the digest and the start of a stream.
type capture struct {
	shown bytes.Buffer
	size  int64
	sum   hash.Hash
}

func newCapture() *capture { return &capture{sum: sha256.New()} }

func (c *capture) Write(p []byte) (int, error) {
	c.sum.Write(p)
	c.size += int64(len(p))
	if room := maxShownOutput - c.shown.Len(); room > 0 {
		c.shown.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String is the start of the stream, with a note when there was more.
func (c *capture) String() string {
	if c.size > int64(c.shown.Len()) {
		return fmt.Sprintf("%s\n[%d more bytes not shown]", c.shown.String(), c.size-int64(c.shown.Len()))
	}
	return c.shown.String()
}

// ErrVerify is wrapped by *VerifyError.
var ErrVerify = errors.New("slim image does not behave like the original")

// VerifyError reports a slim image whose run differs from the original's. The
// slim image is in the store (untagged) under Digest.
type VerifyError struct {
	Digest   v1.Hash
	Probe    Probe
	Original RunOutput
	Slim     RunOutput
}

func (e *VerifyError) Error() string {
	show := func(o RunOutput) string {
		return fmt.Sprintf("exit status %d\n--- stdout ---\n%s\n--- stderr ---\n%s", o.ExitCode, o.Stdout, o.Stderr)
	}
	return fmt.Sprintf("%v under probe %q (slim image %s not tagged)\n=== original: %s\n=== slim: %s\nadd what it needs with --include PATH or a --probe-cmd that exercises it",
		ErrVerify, e.Probe.String(), e.Digest, show(e.Original), show(e.Slim))
}

func (e *VerifyError) Unwrap() error { return ErrVerify }

// Build makes the minimal image of img: its final filesystem is mounted read-only
// from the store's unpacked layers under the store's tmp/ (always unmounted and
// removed), the closure of
// its entrypoint computed, and one layer written with exactly the closure's
// paths and their parent directories, with their original metadata. The config
// is the original's with one history entry added. Unless opts.NoVerify, both
// images are run with the same arguments (network none) and must exit alike and
// print the same stdout and stderr; otherwise a *VerifyError is returned and
// nothing is tagged. Build is silent; the Report carries the numbers.
func Build(ctx context.Context, st *store.Store, img v1.Image, opts BuildOptions) (v1.Hash, v1.Image, *Report, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("reading image config: %w", err)
	}
	tmp, err := st.TempDir("slim-")
	if err != nil {
		return v1.Hash{}, nil, nil, err
	}
	// A read-only view of the store's unpacked layers is the final filesystem,
	// without writing it out again.
	view, err := viewImage(st, img, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return v1.Hash{}, nil, nil, fmt.Errorf("mounting image filesystem: %w", err)
	}
	defer func() {
		view.Remove()
		os.Remove(tmp)
	}()
	rootfs := view.Root()
	probes := opts.Probes
	if len(probes) == 0 {
		probes = []Probe{{Args: opts.VerifyArgs}}
	}
	// The original runs once per probe: watched (its opens join the
	// closure) and recorded (the slim image must do the same).
	var originals []RunOutput
	copts := opts.Options
	if !opts.NoObserve || !opts.NoVerify {
		copts.Observed = map[string]string{}
		for k, v := range opts.Options.Observed {
			copts.Observed[k] = v
		}
		for i, pr := range probes {
			out, seen, err := runProbe(ctx, st, img, pr, opts, !opts.NoObserve)
			if err != nil {
				return v1.Hash{}, nil, nil, fmt.Errorf("probing the original (probe %d, %s): %w", i+1, pr, err)
			}
			originals = append(originals, out)
			for p := range seen {
				if _, ok := copts.Observed[p]; !ok {
					copts.Observed[p] = fmt.Sprintf("probe %d: %s", i+1, pr)
				}
			}
		}
	}
	res, err := Closure(rootfs, cf.Config, copts)
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("computing closure: %w", err)
	}
	rep := &Report{Closure: res}
	paths := withParents(res)
	if rep.FilesBefore, rep.BytesBefore, rep.Dropped, err = countTree(rootfs, paths); err != nil {
		return v1.Hash{}, nil, nil, err
	}
	rep.FilesAfter, rep.BytesAfter = len(paths), res.Bytes()

	info, err := writeLayer(st, rootfs, paths, opts.Compression)
	if err != nil {
		return v1.Hash{}, nil, nil, err
	}
	comment := ""
	if od, err := img.Digest(); err == nil {
		comment = "minimal closure of " + od.String()
	}
	d, slim, err := writeImage(st, cf, info, comment)
	if err != nil {
		return v1.Hash{}, nil, nil, err
	}
	if !opts.NoVerify {
		code, err := verify(ctx, st, slim, d, probes, originals, opts)
		if err != nil {
			return d, slim, rep, err
		}
		rep.Verified, rep.ExitCode = true, code
	}
	if opts.Tag != "" {
		if err := st.Tag(opts.Tag, d); err != nil {
			return d, slim, rep, err
		}
	}
	return d, slim, rep, nil
}

// countTree counts every path below root and the bytes of its regular
// files, and lists those not in kept (sorted image paths).
func countTree(root string, kept []string) (int, int64, []string, error) {
	n, size := 0, int64(0)
	var dropped []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		n++
		if rel, err := filepath.Rel(root, p); err == nil {
			ip := "/" + filepath.ToSlash(rel)
			if _, found := slices.BinarySearch(kept, ip); !found {
				dropped = append(dropped, ip)
			}
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("measuring image filesystem: %w", err)
	}
	sort.Strings(dropped)
	return n, size, dropped, nil
}

// withParents returns the closure's paths plus all their parent directories,
// sorted so that parents come first.
func withParents(res *Result) []string {
	set := map[string]bool{}
	for _, e := range res.Entries {
		for p := e.Path; p != "/" && !set[p]; p = path.Dir(p) {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// writeLayer streams one layer holding exactly paths (taken from rootfs, with
// their metadata) into the store.
func writeLayer(st *store.Store, rootfs string, paths []string, c store.Compression) (store.LayerInfo, error) {
	lw, err := st.NewLayerWriter(c)
	if err != nil {
		return store.LayerInfo{}, err
	}
	defer lw.Abort()
	tw := layer.NewWriter(lw)
	skipAll := func(string) bool { return true }
	for _, p := range paths {
		if err := tw.Add(filepath.Join(rootfs, filepath.FromSlash(p)), strings.TrimPrefix(p, "/"), layer.AddOptions{Skip: skipAll}); err != nil {
			tw.Close()
			return store.LayerInfo{}, fmt.Errorf("writing slim layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return store.LayerInfo{}, fmt.Errorf("writing slim layer: %w", err)
	}
	info, err := lw.Commit()
	if err != nil {
		return store.LayerInfo{}, err
	}
	return info, nil
}

// writeImage writes the slim image's config and manifest to the store.
func writeImage(st *store.Store, cf *v1.ConfigFile, info store.LayerInfo, comment string) (v1.Hash, v1.Image, error) {
	cfg := cf.DeepCopy()
	cfg.History = append(cfg.History, v1.History{Created: cfg.Created, CreatedBy: "slimbuild slim", Comment: comment})
	// Every earlier history entry stands for no layer of this image.
	for i := range cfg.History[:len(cfg.History)-1] {
		cfg.History[i].EmptyLayer = true
	}
	l, err := st.Layer(info)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("reading slim layer: %w", err)
	}
	img, err := image.Assemble(cfg, []v1.Layer{l}, nil)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("assembling slim image: %w", err)
	}
	d, stored, err := image.StoreManifest(st, img)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("writing slim image: %w", err)
	}
	return d, stored, nil
}

// runProbe runs img with one probe and records what it did; when watch is
// set, the paths it opened on its root filesystem are returned too. This is
// the one place slim starts containers.
func runProbe(ctx context.Context, st *store.Store, img v1.Image, pr Probe, opts BuildOptions, watch bool) (RunOutput, map[string]bool, error) {
	timeout := opts.VerifyTimeout
	if timeout <= 0 {
		timeout = DefaultVerifyTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var fw *fileWatch
	defer func() {
		if fw != nil {
			fw.Stop()
		}
	}()
	netns := make(chan string, 1)
	out, errOut := newCapture(), newCapture()
	ro := runtime.ImageRun{Args: pr.Args, Network: "none", Stdout: out, Stderr: errOut, Runc: opts.Runc,
		BeforeStart: func(rootfs, ns string) error {
			if watch {
				w, err := watchFilesystem(rootfs)
				if err != nil {
					return err
				}
				fw = w
			}
			netns <- ns
			return nil
		}}
	if pr.HTTPPort != 0 {
		ro.Args = nil
	}
	type ran struct {
		code int
		err  error
	}
	exited := make(chan struct{})
	var r ran
	go func() {
		defer close(exited)
		r.code, r.err = image.Run(runCtx, st, img, ro)
	}()
	var res RunOutput
	if pr.HTTPPort != 0 {
		var ns string
		select {
		case ns = <-netns:
		case <-exited:
			return RunOutput{}, nil, fmt.Errorf("starting the server: %w", r.err)
		}
		deadline, _ := runCtx.Deadline()
		status, body, err := httpProbe(ns, pr, exited, deadline)
		cancel() // the server's work is done
		<-exited
		if err != nil {
			return RunOutput{}, nil, fmt.Errorf("%w\n--- server stderr ---\n%s", err, errOut.String())
		}
		c := newCapture()
		c.Write(body)
		res = RunOutput{ExitCode: status, Stdout: c.String(), StdoutSize: c.size, StdoutDigest: hex.EncodeToString(c.sum.Sum(nil))}
	} else {
		<-exited
		if r.err != nil && ctx.Err() == nil && runCtx.Err() != nil {
			return RunOutput{}, nil, fmt.Errorf("it ran for %s: %w (a server needs --http-probe, a program that waits needs arguments or --no-verify)", timeout, ErrVerifyTimeout)
		}
		if r.err != nil {
			return RunOutput{}, nil, r.err
		}
		res = RunOutput{ExitCode: r.code, Stdout: out.String(), Stderr: errOut.String(),
			StdoutSize: out.size, StderrSize: errOut.size,
			StdoutDigest: hex.EncodeToString(out.sum.Sum(nil)), StderrDigest: hex.EncodeToString(errOut.sum.Sum(nil)),
		}
	}
	var seen map[string]bool
	if fw != nil {
		var err error
		seen, err = fw.Stop()
		fw = nil
		if err != nil {
			return RunOutput{}, nil, err
		}
	}
	return res, seen, nil
}

// verify runs the slim image with every probe and compares what it does with
// what the original did.
func verify(ctx context.Context, st *store.Store, slim v1.Image, d v1.Hash, probes []Probe, originals []RunOutput, opts BuildOptions) (int, error) {
	for i, pr := range probes {
		b, _, err := runProbe(ctx, st, slim, pr, opts, false)
		if errors.Is(err, ErrVerifyTimeout) {
			return 0, fmt.Errorf("verifying the slim image (probe %d, %s): %w", i+1, pr, err)
		}
		if err != nil {
			// The slim image may not even start (its entrypoint's runtime missing).
			return 0, &VerifyError{Digest: d, Probe: pr, Original: originals[i], Slim: RunOutput{ExitCode: -1, Stderr: err.Error()}}
		}
		if originals[i] != b {
			return 0, &VerifyError{Digest: d, Probe: pr, Original: originals[i], Slim: b}
		}
	}
	return originals[0].ExitCode, nil
}

// viewImage mounts img's layers, unpacked in the store, read-only in a new
// snapshot under dir.
func viewImage(st *store.Store, img v1.Image, dir string) (*snapshot.Active, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	lowers, err := st.LayerDirs(layers)
	if err != nil {
		return nil, err
	}
	return snapshot.Snapshotter{Dir: dir}.View(lowers)
}
