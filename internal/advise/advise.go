package advise

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/slim"
	"github.com/slimbuild/slimbuild/internal/store"
)

// Options describe one advise run.
type Options struct {
	// Build builds the original Dockerfile (ContextDir, Dockerfile, build
	// args, network, progress...). Its Tags name the original image.
	Build engine.Options
	// Slim chooses the probes (Probes, VerifyArgs), the entrypoint and
	// includes, the timeouts; Tag, NoVerify and NoObserve are ignored.
	Slim slim.BuildOptions
	// Base is the runtime stage's base image; "" means scratch.
	Base string
	// Tags name the image built from the advised Dockerfile.
	Tags []string
	// WriteTo is where the advised Dockerfile is written (through a temporary
	// file renamed into place) and built from; "" means a temporary file in
	// the store, removed afterwards (Result.Dockerfile has the bytes).
	WriteTo string
}

// Result is what Advise found.
type Result struct {
	// Dockerfile is the advised Dockerfile, notes included.
	Dockerfile []byte
	// Notes is what Advise could not be sure of (also in Dockerfile).
	Notes    []string
	Original *engine.Result
	Advised  *engine.Result // nil when the advised Dockerfile did not build
	Slim     *slim.Report
	Verified bool
	ExitCode int // of the first probe, when verified
	// OriginalBytes and AdvisedBytes are the regular file bytes of the
	// original's final filesystem and of the advised image's layers.
	OriginalBytes, AdvisedBytes int64
}

// ReductionPercent is how much of the original's file bytes the advised image drops.
func (r *Result) ReductionPercent() float64 {
	if r.OriginalBytes == 0 {
		return 0
	}
	return 100 * float64(r.OriginalBytes-r.AdvisedBytes) / float64(r.OriginalBytes)
}

// ErrAdvisedBuild is wrapped when the advised Dockerfile does not build.
var ErrAdvisedBuild = errors.New("the advised Dockerfile does not build")

// Advise builds opts.Build's Dockerfile, slims the result, writes the
// multistage Dockerfile that gives the slim filesystem, builds it and checks
// that it behaves like the original under the same probes. The Dockerfile is
// written even when that check fails (with a first note saying so); the
// error then wraps slim.ErrVerify or ErrAdvisedBuild. Advise is silent apart
// from opts.Build.Progress.
func Advise(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	dfPath := opts.Build.Dockerfile
	if dfPath == "" {
		dfPath = filepath.Join(opts.Build.ContextDir, "Dockerfile")
	}
	src, err := os.ReadFile(dfPath)
	if err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", err)
	}
	orig, err := engine.Build(ctx, st, opts.Build)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", dfPath, err)
	}
	res := &Result{Original: orig}
	cf, err := orig.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the built image's config: %w", err)
	}
	so := opts.Slim
	so.Tag, so.NoVerify, so.NoObserve = "", true, false
	_, slimImg, rep, err := slim.Build(ctx, st, orig.Image, so)
	if err != nil {
		return nil, fmt.Errorf("slimming the built image: %w", err)
	}
	res.Slim, res.OriginalBytes = rep, rep.BytesBefore
	nodes, err := layerNodes(slimImg)
	if err != nil {
		return nil, err
	}
	notes := append([]string{}, rep.Closure.Notes...)
	notes = append(notes, observedNote(so, rep.Closure))
	rw, err := Rewrite(dfPath, src, nodes, RewriteOptions{Base: opts.Base, Config: cf.Config, Notes: notes})
	if err != nil {
		return nil, err
	}
	res.Notes = rw.Notes

	target := opts.WriteTo
	if target == "" {
		tmp, err := st.TempDir("advise-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		target = filepath.Join(tmp, "Dockerfile")
	}
	res.Dockerfile = rw.Bytes()
	if err := writeFile(target, res.Dockerfile); err != nil {
		return nil, err
	}
	bo := opts.Build
	bo.Dockerfile, bo.Tags, bo.Target = target, opts.Tags, ""
	adv, err := engine.Build(ctx, st, bo)
	if err != nil {
		res.Dockerfile = rw.Bytes("BUILD FAILED: this Dockerfile did not build here: " + err.Error())
		if werr := writeFile(target, res.Dockerfile); werr != nil {
			return res, werr
		}
		return res, fmt.Errorf("%w: %w", ErrAdvisedBuild, err)
	}
	res.Advised = adv
	advNodes, err := layerNodes(adv.Image)
	if err != nil {
		return res, err
	}
	for _, n := range advNodes {
		res.AdvisedBytes += n.size
	}
	code, err := slim.Compare(ctx, st, orig.Image, adv.Image, so)
	if err != nil {
		res.Dockerfile = rw.Bytes("VERIFICATION FAILED: the image this Dockerfile builds does not behave like the original; see the error slimbuild advise printed")
		if werr := writeFile(target, res.Dockerfile); werr != nil {
			return res, werr
		}
		return res, fmt.Errorf("verifying the advised image: %w", err)
	}
	res.Verified, res.ExitCode = true, code
	return res, nil
}

// observedNote says which runs the closure was observed under: what no probe
// exercised may be missing.
func observedNote(so slim.BuildOptions, c *slim.Result) string {
	probes := so.Probes
	if len(probes) == 0 {
		probes = []slim.Probe{{Args: so.VerifyArgs}}
	}
	var runs []string
	for _, p := range probes {
		runs = append(runs, p.String())
	}
	return fmt.Sprintf("kept: the static closure of %s and what these runs opened: %s; a file the program opens only on paths no run took (other arguments, requests, errors) is not copied; add a probe (--probe-cmd, --http-probe) or --include",
		c.Entrypoint, strings.Join(runs, "; "))
}

// layerNodes lists the slim image's single layer: every path with its metadata.
func layerNodes(img v1.Image) ([]Node, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the slim image: %w", err)
	}
	var nodes []Node
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("reading the slim layer: %w", err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, fmt.Errorf("reading the slim layer: %w", err)
			}
			n := Node{Path: path.Clean("/" + h.Name), Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
			if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
				n.size = h.Size
			}
			if n.Type == tar.TypeRegA {
				n.Type = tar.TypeReg
			}
			for k := range h.PAXRecords {
				if strings.HasPrefix(k, "SCHILY.xattr.") {
					n.Xattrs = true
				}
			}
			nodes = append(nodes, n)
		}
		rc.Close()
	}
	return nodes, nil
}

// writeFile writes data to name through a temporary file renamed into place.
func writeFile(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".advise-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
