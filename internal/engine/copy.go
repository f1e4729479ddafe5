package engine

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/layer"
	"github.com/slimbuild/slimbuild/internal/source"
	"github.com/slimbuild/slimbuild/internal/store"
)

type copyRequest struct {
	sources  instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	excludes []string
	parents  bool
	add      bool
	unpack   bool
	// unpackURL is ADD --unpack=true: URL sources are unpacked too.
	unpackURL bool
	checksum  string
	// keepGitDir is ADD --keep-git-dir (nil when not given).
	keepGitDir *bool
	// link is COPY --link: the layer is made as if on an empty root, so it does
	// not depend on the stage it lands on (existing directories, symlinks).
	link bool
}

// origin is where COPY --from or RUN --mount from= reads: a stage's or an image's layers.
type origin struct {
	layers []v1.Layer
	key    string
	// dir is set instead of layers for a local-directory named context.
	dir *source.Context
}

// fromSource resolves a --from: a named context, a stage, or an image (pulled
// under ctx when missing, so that Ctrl-C stops the pull).
func (b *builder) fromSource(ctx context.Context, ref string) (*origin, error) {
	// A named context wins over a stage or an image of its name, as in BuildKit.
	if nc := b.namedContext(ref); nc != nil {
		return b.namedSource(nc)
	}
	if stg, ok := b.plan.StageByRef(ref); ok {
		b.mu.Lock()
		s := b.results[stg.Index]
		b.mu.Unlock()
		if s == nil {
			return nil, fmt.Errorf("stage %q has not been built", ref)
		}
		return &origin{layers: s.layers, key: s.key}, nil
	}
	// An image named by --from is for the target platform, as in BuildKit.
	img, err := b.images.Resolve(ctx, ref, b.targetPlatform())
	if err != nil {
		return nil, err
	}
	return imageSource(img)
}

// imageSource reads from img's layers, keyed by its digest.
func imageSource(img v1.Image) (*origin, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &origin{layers: layers, key: cachekey.Of("image", d.String())}, nil
}

func (b *builder) copyStep(ctx context.Context, s *stageState, st *step, req copyRequest) error {
	match, err := source.NewMatcher(req.parents, req.excludes)
	if err != nil {
		return b.fail(st, err)
	}
	chmod, err := source.ParseChmod(req.chmod)
	if err != nil {
		return b.fail(st, err)
	}
	destRaw := req.sources.DestPath
	dest := dockerfile.AbsPath(s.Image.Config.WorkingDir, destRaw)
	destIsDir := strings.HasSuffix(destRaw, "/") || destRaw == "." || destRaw == ".." || strings.HasSuffix(destRaw, "/.") || strings.HasSuffix(destRaw, "/..")
	nsrc := len(req.sources.SourcePaths) + len(req.sources.SourceContents)
	if nsrc > 1 && !destIsDir {
		return b.fail(st, fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", strings.ToUpper(st.cmd.Name())))
	}
	if err := source.CheckChecksum(req.sources, req.checksum, req.keepGitDir); err != nil {
		return b.fail(st, err)
	}
	keyParts := []any{"copy", s.key, dest, destIsDir, req.chown, req.chmod, req.add, req.unpack, req.unpackURL, req.link, req.parents, req.excludes}

	var items []source.Item
	var from *origin
	dirCtx := b.bctx // the context directory the items come from, nil for a stage or image
	var downloads []string
	defer func() {
		for _, d := range downloads {
			os.Remove(d)
		}
	}()
	for _, c := range req.sources.SourceContents {
		items = append(items, source.Heredoc(c.Path, c.Data))
		keyParts = append(keyParts, "heredoc", c.Path, c.Data)
	}
	switch {
	case req.from != "":
		from, err = b.fromSource(ctx, req.from)
		if err != nil {
			return b.fail(st, err)
		}
		if from.dir != nil {
			// A local-directory named context is read like the main context.
			dirItems, sum, err := match.InContext(from.dir, req.sources.SourcePaths)
			if err != nil {
				return b.fail(st, fmt.Errorf("--from=%s: %w", req.from, err))
			}
			keyParts = append(keyParts, "from-dir", sum)
			items = append(items, dirItems...)
			dirCtx, from = from.dir, nil
			break
		}
		keyParts = append(keyParts, "from", from.key, req.sources.SourcePaths)
	default:
		got, err := match.Collect(ctx, source.Sources{
			Paths: req.sources.SourcePaths, Add: req.add, Checksum: req.checksum,
			KeepGitDir: req.keepGitDir, Context: b.bctx, TempDir: b.tempDir,
		})
		if err != nil {
			return b.fail(st, err)
		}
		downloads = got.Downloads
		items = append(items, got.Items...)
		keyParts = append(keyParts, got.Key...)
	}
	key := cachekey.Of(keyParts...)
	return b.fsStep(ctx, s, st, key, func(ws *workspace) error {
		tmp, err := b.tempDir()
		if err != nil {
			return err
		}
		all, err := source.FetchGit(ctx, tmp, items)
		if err != nil {
			return err
		}
		defer source.CleanGit(all)
		fromContext := req.from == "" || from == nil
		if from != nil {
			view, err := b.mountWorkspace(from.layers)
			if err != nil {
				return err
			}
			defer view.Remove()
			matched, err := match.Match(view.Root(), req.sources.SourcePaths, nil)
			if err != nil {
				return fmt.Errorf("--from=%s: %w", req.from, err)
			}
			if len(matched) == 0 {
				return fmt.Errorf("--from=%s: %s matched nothing", req.from, strings.Join(req.sources.SourcePaths, " "))
			}
			all = append(all, matched...)
		}
		if len(all) > 1 && !destIsDir {
			return fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", strings.ToUpper(st.cmd.Name()))
		}
		own, err := source.ResolveChown(ws.Root(), req.chown)
		if err != nil {
			return err
		}
		opts := source.CopyOptions{Owner: own, Chmod: chmod, ResetOwner: fromContext, Lchown: b.lchown}
		if fromContext {
			opts.Context = dirCtx
		}
		c := source.NewCopier(ws.Root(), opts)
		unpackOf := func(it source.Item) bool {
			return req.add && !it.IsHeredoc() && ((!it.IsRemote() && req.unpack) || (it.IsRemote() && req.unpackURL))
		}
		ships := b.ships[st.stage.Index]
		if req.link && (req.add || !ships) {
			return b.linkedAdd(ws, c, all, dest, destIsDir, unpackOf, ships)
		}
		// A stage that ships streams its COPY straight into the layer blob it
		// needs; one that does not copies into its snapshot and makes no blob.
		if !req.add && ships {
			view := ws.Root()
			if req.link {
				empty, err := b.tempDir()
				if err != nil {
					return err
				}
				if view, err = os.MkdirTemp(empty, "link-"); err != nil {
					return err
				}
				defer os.Remove(view)
			}
			plan, ok, err := source.PlanDirect(view, all, dest, destIsDir, own, chmod.Mode, chmod.Set, c.Context())
			if err != nil {
				return err
			}
			if chmod.Symbolic != nil {
				ok = false // a symbolic --chmod depends on each file's mode: copied, not planned
			}
			if !ok && req.link {
				// Heredocs, filters that make parents lazily: copied onto an empty root.
				return b.linkedAdd(ws, c, all, dest, destIsDir, unpackOf, ships)
			}
			if ok {
				info, err := b.writeDirect(plan, own, fromContext, chmod)
				if err != nil {
					return err
				}
				ws.layer, ws.direct = info, true
				return nil
			}
		}
		for _, it := range all {
			if err := c.CopyItem(it, dest, destIsDir, unpackOf(it)); err != nil {
				return err
			}
		}
		return nil
	})
}

// linkedAdd is ADD --link, and COPY --link where the layer cannot be planned
// directly: the sources are copied (archives unpacked for ADD) onto an empty
// root in the build's temp dir, and that tree is the layer, so that it does not
// depend on the stage it lands on.
//
// The tree becomes ws's layer: a blob when the stage ships, else a snapshot.
func (b *builder) linkedAdd(ws *workspace, c *source.Copier, items []source.Item, dest string, destIsDir bool, unpack func(source.Item) bool, ships bool) error {
	tmp, err := b.tempDir()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(tmp, "add-link-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	lc := c.WithRoot(scratch)
	for _, it := range items {
		if err := lc.CopyItem(it, dest, destIsDir, unpack(it)); err != nil {
			return err
		}
	}
	ws.direct = true
	if !ships {
		id, err := b.st.CommitTree(scratch, b.opts.SourceDateEpoch)
		if err != nil {
			return err
		}
		ws.snapshot = &id
		return nil
	}
	ws.layer, err = b.st.WriteLayer(b.opts.Compression, b.opts.SourceDateEpoch, func(tw *layer.Writer) error {
		return tw.Add(scratch, "", layer.AddOptions{})
	})
	return err
}

// writeDirect streams the plan into a new layer blob.
func (b *builder) writeDirect(p *source.DirectPlan, own source.Owner, resetOwner bool, chmod source.Chmod) (*store.LayerInfo, error) {
	return b.st.WriteLayer(b.opts.Compression, b.opts.SourceDateEpoch, func(tw *layer.Writer) error {
		return p.Write(tw, own, resetOwner, chmod.Mode, chmod.Set)
	})
}
