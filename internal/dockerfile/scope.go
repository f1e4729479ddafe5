package dockerfile

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Scope is what a stage's instructions change besides its filesystem: the image
// config it is making, with its history, and the build-time variables (ARGs,
// SHELL) that the arguments of its instructions are expanded with. It is the
// part of BuildKit's dispatch state that needs no build, so it is pure: the
// engine keeps one per stage and hands it each instruction.
type Scope struct {
	// Image is the config being made: the base's, changed by the instructions.
	Image v1.ConfigFile
	// Args are the ARGs declared in the stage, with their values.
	Args map[string]string
	// Created is the newest time the image has: its base's, or a step's.
	Created time.Time
	// Epoch, when set, dates the history entries the build adds and the config
	// (see SourceDateEpoch).
	Epoch *time.Time

	// argWins holds the ARGs given a value after the last ENV of the same name:
	// BuildKit's build environment is one list where the later one wins, while
	// the image's Env keeps the ENV value.
	argWins map[string]bool
	shell   []string
	cmdSet  bool // CMD was set in this stage, so ENTRYPOINT keeps it
}

// Clone is an independent copy of s.
func (s *Scope) Clone() Scope {
	c := *s
	c.Image = *s.Image.DeepCopy()
	c.Args = maps.Clone(s.Args)
	if c.Args == nil {
		c.Args = map[string]string{}
	}
	c.argWins = maps.Clone(s.argWins)
	c.shell = slices.Clone(s.shell)
	return c
}

// Begin starts a stage on s, its base's scope: a stage built FROM another stage
// keeps that stage's ARGs (keepArgs), as in BuildKit; the base's Env is no longer
// shadowed by its ARGs; SHELL and CMD start from the base's config.
func (s *Scope) Begin(keepArgs bool, epoch *time.Time) {
	if !keepArgs || s.Args == nil {
		s.Args = map[string]string{}
	}
	s.Epoch = epoch
	s.argWins = nil
	s.cmdSet = false
	s.shell = slices.Clone(s.Image.Config.Shell)
}

// Shell is the stage's SHELL, or /bin/sh -c.
func (s *Scope) Shell() []string {
	if len(s.shell) > 0 {
		return s.shell
	}
	return []string{"/bin/sh", "-c"}
}

// ExpandEnv is what instruction arguments are expanded with: the stage's ARGs
// and its ENV, the one set last winning.
func (s *Scope) ExpandEnv() map[string]string {
	m := maps.Clone(s.Args)
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range EnvMap(s.Image.Config.Env) {
		if !s.argWins[k] {
			m[k] = v
		}
	}
	return m
}

// RunEnv is the environment of a RUN: Env, plus the ARGs, which replace an Env
// value only when set after it. env adds the proxy build args of p that no ARG or
// ENV set (they reach RUN without an ARG, as in BuildKit); key is env without
// them, for the step's cache key.
func (s *Scope) RunEnv(p *Plan) (env, key []string) {
	key = slices.Clone(s.Image.Config.Env)
	have := EnvMap(key)
	for _, k := range slices.Sorted(maps.Keys(s.Args)) {
		if _, ok := have[k]; !ok {
			key = append(key, k+"="+s.Args[k])
		} else if s.argWins[k] {
			key = setEnv(key, k, s.Args[k])
		}
	}
	env = key
	have = EnvMap(key)
	for _, k := range ProxyArgs {
		if v, ok := p.BuildArgs[k]; ok {
			if _, set := have[k]; !set {
				env = append(env[:len(env):len(env)], k+"="+v)
			}
		}
	}
	return env, key
}

// Expand expands the variables in c's arguments with ExpandEnv.
func (s *Scope) Expand(c instructions.Command, lex *shell.Lex) error {
	env := MapEnv(s.ExpandEnv())
	word := func(w string) (string, error) {
		res, err := lex.ProcessWordWithMatches(w, env)
		return res.Result, err
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(word); err != nil {
			return err
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		return e.ExpandRaw(word)
	}
	return nil
}

// Apply carries out c when it changes only the config and the variables (every
// instruction but WORKDIR, RUN, COPY and ADD), recording it in the history, and
// reports whether it did. c's arguments must be expanded already (Expand); p
// gives the build args and global ARGs that ARG reads.
func (s *Scope) Apply(p *Plan, c instructions.Command, lex *shell.Lex) (bool, error) {
	cfg := &s.Image.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			delete(s.argWins, kv.Key)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		s.Image.Author = c.Maintainer
	case *instructions.ArgCommand:
		s.declare(p, c.Args)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, port := range c.Ports {
			words, err := lex.ProcessWords(port, MapEnv(s.ExpandEnv()))
			if err != nil {
				return false, err
			}
			for _, w := range words {
				if !strings.Contains(w, "/") {
					w += "/tcp"
				}
				cfg.ExposedPorts[w] = struct{}{}
			}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return false, fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.ShellCommand:
		s.shell = slices.Clone(c.Shell)
		cfg.Shell = slices.Clone(c.Shell)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.CmdCommand:
		cfg.Cmd = s.withShell(c.ShellDependantCmdLine)
		s.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = s.withShell(c.ShellDependantCmdLine)
		if !s.cmdSet {
			cfg.Cmd = nil
		}
	default:
		return false, nil
	}
	s.AddHistory(c, nil)
	return true, nil
}

// declare is ARG: each name takes its build arg, else its default here, else
// the global ARG's value; a name with none of these is unset.
func (s *Scope) declare(p *Plan, args []instructions.KeyValuePairOptional) {
	global := p.GlobalArgs()
	for _, kv := range args {
		if s.argWins == nil {
			s.argWins = map[string]bool{}
		}
		s.argWins[kv.Key] = true
		if v, ok := p.BuildArgs[kv.Key]; ok {
			s.Args[kv.Key] = v
		} else if kv.Value != nil {
			s.Args[kv.Key] = *kv.Value
		} else if v, ok := global[kv.Key]; ok {
			s.Args[kv.Key] = v
		} else {
			delete(s.Args, kv.Key)
			delete(s.argWins, kv.Key)
		}
	}
}

// withShell turns a shell-form command line into exec form with the stage's shell.
func (s *Scope) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	return append(slices.Clone(s.Shell()), strings.Join(c.CmdLine, " "))
}

// AddHistory records c in the config history, with the time its layer was made
// when it made one (nil when it made none). With an epoch, the entry is dated by
// it.
func (s *Scope) AddHistory(c instructions.Command, layerCreated *time.Time) {
	t := s.Created
	if s.Epoch != nil {
		t = *s.Epoch
	} else if layerCreated != nil {
		t = *layerCreated
		if t.After(s.Created) {
			s.Created = t
		}
	}
	h := v1.History{CreatedBy: s.historyText(c), Comment: "buildkit.dockerfile.v0", Created: v1.Time{Time: t}, EmptyLayer: layerCreated == nil}
	s.Image.History = append(s.Image.History, h)
}

// historyText is how BuildKit writes an instruction into the image history.
func (s *Scope) historyText(c instructions.Command) string {
	switch c := c.(type) {
	case *instructions.RunCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = append(slices.Clone(s.Shell()), strings.Join(c.CmdLine, " "))
		}
		return "RUN " + strings.Join(args, " ") + " # buildkit"
	case *instructions.CopyCommand, *instructions.AddCommand:
		return CommandText(c) + " # buildkit"
	case *instructions.WorkdirCommand:
		return "WORKDIR " + s.Image.Config.WorkingDir
	case *instructions.CmdCommand:
		return "CMD " + jsonString(s.Image.Config.Cmd)
	case *instructions.EntrypointCommand:
		return "ENTRYPOINT " + jsonString(s.Image.Config.Entrypoint)
	}
	return CommandText(c)
}

// ConfigFile is the finished config: a copy of Image with labels added (the
// command line's, after the Dockerfile's, as in buildx), dated by the epoch,
// else by Created, else 1970.
func (s *Scope) ConfigFile(labels map[string]string) *v1.ConfigFile {
	cfg := s.Image.DeepCopy()
	if len(labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, labels)
	}
	switch {
	case s.Epoch != nil:
		cfg.Created = v1.Time{Time: s.Epoch.UTC()}
	case !s.Created.IsZero():
		cfg.Created = v1.Time{Time: s.Created.UTC()}
	default:
		cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	}
	return cfg
}

// AbsPath resolves p against the working directory workdir, as WORKDIR and
// COPY's destination do.
func AbsPath(workdir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if workdir == "" {
		workdir = "/"
	}
	return path.Join(workdir, p)
}

// EnvMap returns an Env list (NAME=value) as a map.
func EnvMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// setEnv sets k=v in env, keeping its order.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func jsonString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
