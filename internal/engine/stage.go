package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
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
	if len(s.cfg.Config.OnBuild) > 0 {
		triggers, err := dockerfile.ParseTriggers(s.cfg.Config.OnBuild)
		if err != nil {
			return nil, &dockerfile.Error{File: b.plan.File, Line: stg.Line, Err: fmt.Errorf("ONBUILD trigger of the base image: %w", err)}
		}
		s.cfg.Config.OnBuild = nil
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
		s.cmdSet = false
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
		s.cfg.Config.WorkingDir = "/"
	default:
		img, err := b.images.Resolve(ctx, stg.Base, stagePlatform(stg))
		if err != nil {
			return nil, err
		}
		if s, err = imageState(img); err != nil {
			return nil, fmt.Errorf("%s: %w", stg.Base, err)
		}
	}
	if stg.BaseStage < 0 {
		b.setPlatform(s, stg)
	}
	s.epoch = b.opts.SourceDateEpoch
	if stg.BaseStage < 0 {
		// A stage built FROM another stage keeps that stage's ARGs, as in BuildKit.
		s.args = map[string]string{}
	}
	// A stage starts from its base's Env: inherited ARGs no longer shadow it.
	s.argWins = nil
	s.shell = nil
	if len(s.cfg.Config.Shell) > 0 {
		s.shell = append([]string(nil), s.cfg.Config.Shell...)
	}
	s.cfg.Config.Env = runtime.WithDefaultPath(s.cfg.Config.Env)
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
	return &stageState{layers: layers, cfg: *cf.DeepCopy(), key: cachekey.Of("image", d.String()), created: cf.Created.Time}, nil
}

// dispatch runs one instruction.
func (b *builder) dispatch(ctx context.Context, s *stageState, st *step, lex *shell.Lex) error {
	env := s.expandEnv()
	expander := func(word string) (string, error) {
		res, err := lex.ProcessWordWithMatches(word, dockerfile.MapEnv(env))
		if err != nil {
			return "", err
		}
		return res.Result, nil
	}
	if e, ok := st.cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expander); err != nil {
			return b.fail(st, err)
		}
	}
	if e, ok := st.cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(func(word string) (string, error) {
			res, err := lex.ProcessWordWithMatches(word, dockerfile.MapEnv(env))
			return res.Result, err
		}); err != nil {
			return b.fail(st, err)
		}
	}
	meta := func() {
		b.countStep(false)
		b.emit(Event{Kind: StepDone, Stage: st.stage.ID(), Step: st.n, Total: st.total, Text: st.text, Duration: time.Since(st.start)})
		s.addHistory(historyText(st.cmd, s), nil)
	}
	switch c := st.cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			s.cfg.Config.Env = setEnv(s.cfg.Config.Env, kv.Key, kv.Value)
			delete(s.argWins, kv.Key)
		}
		meta()
	case *instructions.LabelCommand:
		if s.cfg.Config.Labels == nil {
			s.cfg.Config.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			s.cfg.Config.Labels[kv.Key] = kv.Value
		}
		meta()
	case *instructions.MaintainerCommand:
		s.cfg.Author = c.Maintainer
		meta()
	case *instructions.ArgCommand:
		global := b.plan.GlobalArgs()
		for _, kv := range c.Args {
			b.consume(kv.Key)
			if s.argWins == nil {
				s.argWins = map[string]bool{}
			}
			s.argWins[kv.Key] = true
			if v, ok := b.plan.BuildArgs[kv.Key]; ok {
				s.args[kv.Key] = v
			} else if kv.Value != nil {
				s.args[kv.Key] = *kv.Value
			} else if v, ok := global[kv.Key]; ok {
				s.args[kv.Key] = v
			} else {
				delete(s.args, kv.Key)
				delete(s.argWins, kv.Key)
			}
		}
		meta()
	case *instructions.UserCommand:
		s.cfg.Config.User = c.User
		meta()
	case *instructions.ExposeCommand:
		if s.cfg.Config.ExposedPorts == nil {
			s.cfg.Config.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			words, err := lex.ProcessWords(p, dockerfile.MapEnv(env))
			if err != nil {
				return b.fail(st, err)
			}
			for _, w := range words {
				if !strings.Contains(w, "/") {
					w += "/tcp"
				}
				s.cfg.Config.ExposedPorts[w] = struct{}{}
			}
		}
		meta()
	case *instructions.VolumeCommand:
		if s.cfg.Config.Volumes == nil {
			s.cfg.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return b.fail(st, fmt.Errorf("VOLUME specified can not be an empty string"))
			}
			s.cfg.Config.Volumes[v] = struct{}{}
		}
		meta()
	case *instructions.StopSignalCommand:
		s.cfg.Config.StopSignal = c.Signal
		meta()
	case *instructions.HealthCheckCommand:
		h := c.Health
		s.cfg.Config.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		meta()
	case *instructions.ShellCommand:
		s.shell = append([]string(nil), c.Shell...)
		s.cfg.Config.Shell = append([]string(nil), c.Shell...)
		meta()
	case *instructions.OnbuildCommand:
		s.cfg.Config.OnBuild = append(s.cfg.Config.OnBuild, c.Expression)
		meta()
	case *instructions.CmdCommand:
		s.cfg.Config.Cmd = s.withShell(c.ShellDependantCmdLine)
		s.cmdSet = true
		meta()
	case *instructions.EntrypointCommand:
		s.cfg.Config.Entrypoint = s.withShell(c.ShellDependantCmdLine)
		if !s.cmdSet {
			s.cfg.Config.Cmd = nil
		}
		meta()
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
	return nil
}

func (b *builder) countStep(cached bool) {
	b.mu.Lock()
	b.steps++
	if cached {
		b.cached++
	}
	b.mu.Unlock()
}

// shellOf is the stage's SHELL, or /bin/sh -c.
func (s *stageState) shellOf() []string {
	if len(s.shell) > 0 {
		return s.shell
	}
	return []string{"/bin/sh", "-c"}
}

// withShell turns a shell-form command line into exec form with the stage's shell.
func (s *stageState) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	return append(append([]string{}, s.shellOf()...), strings.Join(c.CmdLine, " "))
}

// addHistory records an instruction in the config history, with its layer when it
// made one. With a source date epoch, the entry is dated by it.
func (s *stageState) addHistory(createdBy string, created *time.Time) {
	t := s.created
	if s.epoch != nil {
		t = *s.epoch
	} else if created != nil {
		t = *created
		if t.After(s.created) {
			s.created = t
		}
	}
	h := v1.History{CreatedBy: createdBy, Comment: "buildkit.dockerfile.v0", Created: v1.Time{Time: t}, EmptyLayer: created == nil}
	s.cfg.History = append(s.cfg.History, h)
}

// historyText is how BuildKit writes an instruction into the image history.
func historyText(c instructions.Command, s *stageState) string {
	switch c := c.(type) {
	case *instructions.RunCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = append(append([]string{}, s.shellOf()...), strings.Join(c.CmdLine, " "))
		}
		return "RUN " + strings.Join(args, " ") + " # buildkit"
	case *instructions.CopyCommand, *instructions.AddCommand:
		return dockerfile.CommandText(c) + " # buildkit"
	case *instructions.WorkdirCommand:
		return "WORKDIR " + s.cfg.Config.WorkingDir
	case *instructions.CmdCommand:
		return "CMD " + jsonString(s.cfg.Config.Cmd)
	case *instructions.EntrypointCommand:
		return "ENTRYPOINT " + jsonString(s.cfg.Config.Entrypoint)
	}
	return dockerfile.CommandText(c)
}

func jsonString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// absPath resolves p against the working directory, as WORKDIR and COPY do.
func absPath(workdir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if workdir == "" {
		workdir = "/"
	}
	return path.Join(workdir, p)
}
