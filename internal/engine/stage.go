package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/slimbuild/slimbuild/internal/cachekey"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

// step is one instruction being dispatched.
type step struct {
	stage *dockerfile.Stage
	n     int // 1-based
	total int
	cmd   instructions.Command
	text  string // the instruction as written, for progress and history
	start time.Time
}

func (st *step) line() int { return dockerfile.Line(st.cmd.Location()) }

// fail wraps err with the Dockerfile location of the step.
func (b *builder) fail(st *step, err error) error {
	return &dockerfile.Error{File: b.plan.File, Line: st.line(), Err: fmt.Errorf("%s: %w", st.stage.ID(), err)}
}

// buildStage runs one stage's instructions from its base.
func (b *builder) buildStage(ctx context.Context, stg *dockerfile.Stage) (*stageState, error) {
	if stg.Name != "" {
		// A named context of the stage's name replaces the stage, as in BuildKit.
		if nc := b.namedContext(stg.Name); nc != nil {
			s, err := b.namedState(ctx, nc, stg)
			if err != nil {
				return nil, &dockerfile.Error{File: b.plan.File, Line: stg.Line, Err: err}
			}
			b.emit(Event{Kind: StageDone, Stage: stg.ID()})
			return s, nil
		}
	}
	s, err := b.baseState(ctx, stg)
	if err != nil {
		return nil, &dockerfile.Error{File: b.plan.File, Line: stg.Line, Err: err}
	}
	cmds := stg.Commands
	// ONBUILD triggers of the base run first, and are consumed.
	if len(s.Image.Config.OnBuild) > 0 {
		triggers, err := dockerfile.ParseTriggers(s.Image.Config.OnBuild)
		if err != nil {
			return nil, &dockerfile.Error{File: b.plan.File, Line: stg.Line, Err: fmt.Errorf("ONBUILD trigger of the base image: %w", err)}
		}
		s.Image.Config.OnBuild = nil
		cmds = append(triggers, cmds...)
	}
	lex := shell.NewLex(b.plan.Escape)
	for i, c := range cmds {
		st := &step{stage: stg, n: i + 1, total: len(cmds), cmd: c, text: dockerfile.CommandText(c), start: time.Now()}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.dispatch(ctx, s, st, lex); err != nil {
			return nil, err
		}
	}
	b.emit(Event{Kind: StageDone, Stage: stg.ID()})
	return s, nil
}

// baseState is the state FROM starts with.
func (b *builder) baseState(ctx context.Context, stg *dockerfile.Stage) (*stageState, error) {
	var s *stageState
	switch {
	case stg.BaseStage >= 0:
		b.mu.Lock()
		parent := b.results[stg.BaseStage]
		b.mu.Unlock()
		if parent.namedDir {
			return nil, errNamedDirBase
		}
		s = parent.clone()
	case b.namedContext(stg.Base) != nil:
		var err error
		if s, err = b.namedState(ctx, b.namedContext(stg.Base), stg); err != nil {
			return nil, err
		}
		if s.namedDir {
			return nil, errNamedDirBase
		}
	case stg.Scratch:
		s = &stageState{key: cachekey.Of("scratch")}
		s.Image.Config.WorkingDir = "/"
	default:
		img, err := b.images.Resolve(ctx, stg.Base, stagePlatform(stg))
		if err != nil {
			return nil, err
		}
		if s, err = imageState(img); err != nil {
			return nil, fmt.Errorf("%s: %w", stg.Base, err)
		}
		if b.opts.OnBase != nil {
			b.opts.OnBase(s.layers)
		}
	}
	if stg.BaseStage < 0 {
		b.setPlatform(s, stg)
	}
	s.Begin(stg.BaseStage >= 0, b.opts.SourceDateEpoch)
	s.Image.Config.Env = runtime.WithDefaultPath(s.Image.Config.Env)
	return s, nil
}

// imageState is the state a stage starts with from img: its filesystem and
// config, keyed by its digest.
func imageState(img v1.Image) (*stageState, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &stageState{Scope: dockerfile.Scope{Image: *cf.DeepCopy(), Created: cf.Created.Time}, layers: layers, key: cachekey.Of("image", d.String())}, nil
}

// dispatch runs one instruction.
func (b *builder) dispatch(ctx context.Context, s *stageState, st *step, lex *shell.Lex) error {
	if err := s.Expand(st.cmd, lex); err != nil {
		return b.fail(st, err)
	}
	if ok, err := s.Apply(b.plan, st.cmd, lex); err != nil {
		return b.fail(st, err)
	} else if ok {
		if c, isArg := st.cmd.(*instructions.ArgCommand); isArg {
			for _, kv := range c.Args {
				b.consume(kv.Key)
			}
		}
		b.finished(st, StepDone)
		return nil
	}
	switch c := st.cmd.(type) {
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, s, st, c)
	case *instructions.RunCommand:
		return b.runStep(ctx, s, st, c)
	case *instructions.CopyCommand:
		return b.copyStep(ctx, s, st, copyRequest{
			sources: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			excludes: c.ExcludePatterns, parents: c.Parents, link: c.Link,
		})
	case *instructions.AddCommand:
		unpack := true
		if c.Unpack != nil {
			unpack = *c.Unpack
		}
		return b.copyStep(ctx, s, st, copyRequest{
			sources: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, add: true, unpack: unpack,
			// A downloaded archive is unpacked only when asked (BuildKit 0.34).
			unpackURL: c.Unpack != nil && *c.Unpack,
			excludes:  c.ExcludePatterns, checksum: c.Checksum, link: c.Link,
			keepGitDir: c.KeepGitDir,
		})
	default:
		return b.fail(st, fmt.Errorf("instruction %s is not supported", strings.ToUpper(st.cmd.Name())))
	}
}

// finished counts st and reports it: StepDone, or StepCached.
func (b *builder) finished(st *step, kind EventKind) {
	b.mu.Lock()
	b.steps++
	if kind == StepCached {
		b.cached++
	}
	b.mu.Unlock()
	b.emit(Event{Kind: kind, Stage: st.stage.ID(), Step: st.n, Total: st.total, Text: st.text, Duration: time.Since(st.start)})
}
