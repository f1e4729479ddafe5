package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options select what to plan.
type Options struct {
	// Target is the stage to build; empty means the last stage.
	Target string
	// BuildArgs are --build-arg values.
	BuildArgs map[string]string
	// AllStages runs the per-instruction build checks over every stage, not
	// only the ones the target needs (what --check does).
	AllStages bool
	// Platform is the target platform (TARGETPLATFORM and friends, and the
	// platform of every stage without FROM --platform); zero means the host's.
	Platform ocispecs.Platform
}

// Plan is a File planned for one target: its stages resolved, with the stage graph.
type Plan struct {
	File   string
	Escape rune
	// MetaArgs are the ARGs before the first FROM, with their values after
	// --build-arg overrides (nil Value: declared without a value).
	MetaArgs []instructions.KeyValuePairOptional
	// BuildArgs are the --build-arg values given.
	BuildArgs map[string]string
	// Stages in file order.
	Stages []*Stage
	// Target is the index of the stage to build.
	Target int
	// Needed lists the indexes of the stages the target needs, dependencies first,
	// ending with the target.
	Needed []int
	// Warnings are what BuildKit's build checks report, and notices about
	// directives slimbuild does not follow (see lint.go).
	Warnings []Warning
	// Platform is the target platform; BuildPlatform the host's.
	Platform, BuildPlatform ocispecs.Platform
	// checkError is `# check=error=true`: warnings fail the build (LintError).
	checkError bool
}

// Stage is one FROM block.
type Stage struct {
	Index int
	Name  string // lowercase, "" when unnamed
	Line  int
	// Base is the image reference after ARG expansion, when the stage starts from an image.
	Base string
	// BaseStage is the index of the stage this one builds on, or -1.
	BaseStage int
	// Scratch is true for FROM scratch.
	Scratch bool
	// Platform is the stage's FROM --platform after ARG expansion ("" when none).
	Platform string
	// On is the platform the stage is built for and runs its RUN steps on: its
	// FROM --platform, else the target platform.
	On       ocispecs.Platform
	Commands []instructions.Command
	// Deps are the stages this one needs: its base stage and every COPY --from and
	// RUN --mount from= that names a stage, in first-use order, without duplicates.
	Deps []int
}

// ID is how progress names a stage: its name, or its index.
func (s *Stage) ID() string {
	if s.Name != "" {
		return s.Name
	}
	return "stage-" + strconv.Itoa(s.Index)
}

// Error is a Dockerfile error with its location.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownTarget is returned (wrapped) when --target names no stage.
var ErrUnknownTarget = errors.New("unknown target stage")

// File is a parsed Dockerfile, the first of the two steps: BuildKit's AST made
// typed instructions (stages and the global ARGs before the first FROM), the
// escape token and the findings of the checks that need no build options. It
// is read-only once parsed: Plan may be called on it more than once.
type File struct {
	Name   string
	Escape rune
	// Stages are BuildKit's typed stages, in file order.
	Stages []instructions.Stage
	// MetaArgs are the ARG instructions before the first FROM, as written.
	MetaArgs []instructions.ArgCommand

	src      []byte    // for the # check= directive, read again by each Plan
	warnings []Warning // what parsing found
}

// MaxSize bounds a Dockerfile (real ones are a few KiB): Parse refuses a longer one.
const MaxSize = 16 << 20

// Parse reads the Dockerfile named file (the name is only shown in errors and
// warnings) into typed instructions. Every error names file:line.
func Parse(file string, r io.Reader) (*File, error) {
	src, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if len(src) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, MaxSize)
	}
	var warnings []Warning
	if n := syntaxNotice(file, src); n != nil {
		warnings = append(warnings, *n)
	}
	lint, err := newLinter(file, src, &warnings)
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, locate(file, err)
	}
	for _, w := range res.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, locate(file, err)
	}
	if len(stages) == 0 {
		return nil, &Error{File: file, Err: errors.New("no FROM instruction: a Dockerfile needs at least one stage")}
	}
	lintStages(lint, shell.NewLex(res.EscapeToken), stages, metaArgs)
	return &File{Name: file, Escape: res.EscapeToken, Stages: stages, MetaArgs: metaArgs, src: src, warnings: warnings}, nil
}

// Plan is the second step: it expands the global ARGs (with opts.BuildArgs),
// resolves each stage's base and dependencies, checks the stage graph and
// orders what opts.Target needs. Every error names file:line.
func (f *File) Plan(opts Options) (*Plan, error) {
	file, stages, metaArgs := f.Name, f.Stages, f.MetaArgs
	warnings := slices.Clone(f.warnings)
	lint, err := newLinter(file, f.src, &warnings)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: file, Escape: f.Escape, BuildArgs: opts.BuildArgs, Platform: opts.Platform, BuildPlatform: HostPlatform()}
	if p.Platform.OS == "" {
		p.Platform = p.BuildPlatform
	}
	p.checkError = lint.ReturnAsError
	defer func() { p.Warnings = warnings }()
	if p.BuildArgs == nil {
		p.BuildArgs = map[string]string{}
	}
	lex := shell.NewLex(f.Escape)

	// Global ARGs: each value is expanded with the ones before it, and --build-arg wins.
	global := platformArgs(p.BuildPlatform, p.Platform)
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				v, err := expand(lex, *kv.Value, global)
				if err != nil {
					return nil, &Error{File: file, Line: line(a.Location()), Err: err}
				}
				kv.Value = &v
			}
			if ov, ok := p.BuildArgs[kv.Key]; ok {
				kv.Value = &ov
			}
			if kv.Value != nil {
				global[kv.Key] = *kv.Value
			}
			p.MetaArgs = append(p.MetaArgs, kv)
		}
	}

	byName := map[string]int{}
	for i := range stages {
		st := &stages[i]
		s := &Stage{Index: i, Name: st.Name, Line: line(st.Location), BaseStage: -1, Commands: st.Commands}
		base, err := expand(lex, st.BaseName, global)
		if err != nil {
			return nil, &Error{File: file, Line: s.Line, Err: fmt.Errorf("expanding FROM %q: %w", st.BaseName, err)}
		}
		if base == "" {
			return nil, &Error{File: file, Line: s.Line, Err: fmt.Errorf("FROM %q expands to an empty name", st.BaseName)}
		}
		if s.Platform, err = expand(lex, st.Platform, global); err != nil {
			return nil, &Error{File: file, Line: s.Line, Err: fmt.Errorf("expanding FROM --platform=%s: %w", st.Platform, err)}
		}
		s.On = p.Platform
		if s.Platform != "" {
			if s.On, err = ParsePlatform(s.Platform); err != nil {
				return nil, &Error{File: file, Line: s.Line, Err: fmt.Errorf("FROM --platform=%s: %w", s.Platform, err)}
			}
		}
		switch idx, ok := byName[strings.ToLower(base)]; {
		case ok:
			s.BaseStage = idx
			s.Deps = append(s.Deps, idx)
			if s.Platform == "" {
				// A stage built FROM another is on that stage's platform.
				s.On = p.Stages[idx].On
			}
		case base == "scratch":
			s.Scratch = true
		default:
			s.Base = base
		}
		if s.Name != "" {
			if prev, dup := byName[s.Name]; dup {
				return nil, &Error{File: file, Line: s.Line, Err: fmt.Errorf("duplicate stage name %q (first defined at line %d)", s.Name, p.Stages[prev].Line)}
			}
			byName[s.Name] = i
		}
		p.Stages = append(p.Stages, s)
	}

	// Dependencies from COPY --from and RUN --mount from=.
	for _, s := range p.Stages {
		for _, c := range s.Commands {
			for _, from := range fromRefs(c) {
				ref, err := expand(lex, from, global)
				if err != nil {
					return nil, &Error{File: file, Line: line(c.Location()), Err: fmt.Errorf("expanding --from %q: %w", from, err)}
				}
				dep, isStage, err := p.resolveFrom(ref, byName, s.Index)
				if err != nil {
					return nil, &Error{File: file, Line: line(c.Location()), Err: err}
				}
				if isStage {
					s.Deps = appendUnique(s.Deps, dep)
				}
			}
		}
	}

	p.Target = len(p.Stages) - 1
	if opts.Target != "" {
		idx, ok := byName[strings.ToLower(opts.Target)]
		if !ok {
			return nil, &Error{File: file, Err: fmt.Errorf("%w %q: stages are %s", ErrUnknownTarget, opts.Target, p.stageNames())}
		}
		p.Target = idx
	}
	needed, err := p.order(p.Target)
	if err != nil {
		return nil, err
	}
	p.Needed = needed
	linted := needed
	if opts.AllStages {
		linted = make([]int, len(p.Stages))
		for i := range linted {
			linted[i] = i
		}
	}
	for _, i := range linted {
		lintCommands(lint.WithMergedConfigFromComments(stages[i].Comments), p, p.Stages[i])
	}
	return p, nil
}

// resolveFrom decides whether a --from value is a stage (by name or index) or an image.
func (p *Plan) resolveFrom(ref string, byName map[string]int, current int) (int, bool, error) {
	if idx, ok := byName[strings.ToLower(ref)]; ok {
		if idx == current {
			return 0, false, fmt.Errorf("stage %q cannot copy from itself", ref)
		}
		return idx, true, nil
	}
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 0 || n >= len(p.Stages) {
			return 0, false, fmt.Errorf("--from=%d: no stage with that index (there are %d)", n, len(p.Stages))
		}
		if n >= current {
			return 0, false, fmt.Errorf("--from=%d: a stage can only refer to an earlier stage", n)
		}
		return n, true, nil
	}
	return 0, false, nil
}

// order returns the stages target needs, dependencies first, and reports cycles.
func (p *Plan) order(target int) ([]int, error) {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(p.Stages))
	var out []int
	var visit func(i int, via []int) error
	visit = func(i int, via []int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			var names []string
			for _, v := range append(via, i) {
				names = append(names, p.Stages[v].ID())
			}
			return &Error{File: p.File, Line: p.Stages[i].Line, Err: fmt.Errorf("stage dependency cycle: %s", strings.Join(names, " -> "))}
		}
		state[i] = visiting
		for _, d := range p.Stages[i].Deps {
			if err := visit(d, append(via, i)); err != nil {
				return err
			}
		}
		state[i] = done
		out = append(out, i)
		return nil
	}
	if err := visit(target, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// StageByRef finds a stage by name or index, as COPY --from uses them.
func (p *Plan) StageByRef(ref string) (*Stage, bool) {
	for _, s := range p.Stages {
		if s.Name != "" && s.Name == strings.ToLower(ref) {
			return s, true
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < len(p.Stages) {
		return p.Stages[n], true
	}
	return nil, false
}

// GlobalArgs returns the global ARG values (after --build-arg overrides), with the
// automatic platform ARGs of the plan's platforms.
func (p *Plan) GlobalArgs() map[string]string {
	m := platformArgs(p.BuildPlatform, p.Platform)
	for _, kv := range p.MetaArgs {
		if kv.Value != nil {
			m[kv.Key] = *kv.Value
		}
	}
	return m
}

// UnusedBuildArgs are the names of the --build-arg values, sorted, that no
// global ARG, no predefined ARG (the proxies, SOURCE_DATE_EPOCH) and none of
// the ARGs in consumed (those the stages built declared) asked for.
func (p *Plan) UnusedBuildArgs(consumed map[string]bool) []string {
	known := map[string]bool{}
	for _, kv := range p.MetaArgs {
		known[kv.Key] = true
	}
	for _, k := range ProxyArgs {
		known[k] = true
	}
	known[SourceDateEpochArg] = true
	var unused []string
	for k := range p.BuildArgs {
		if !known[k] && !consumed[k] {
			unused = append(unused, k)
		}
	}
	slices.Sort(unused)
	return unused
}

func (p *Plan) stageNames() string {
	var names []string
	for _, s := range p.Stages {
		if s.Name != "" {
			names = append(names, strconv.Quote(s.Name))
		}
	}
	if len(names) == 0 {
		return "none named"
	}
	return strings.Join(names, ", ")
}

func fromRefs(c instructions.Command) []string {
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
		return out
	}
	return nil
}

// Expand expands word with vars, as FROM and --from are expanded.
func expand(lex *shell.Lex, word string, vars map[string]string) (string, error) {
	res, err := lex.ProcessWordWithMatches(word, MapEnv(vars))
	if err != nil {
		return "", err
	}
	return res.Result, nil
}

// MapEnv adapts a map to shell.EnvGetter.
type MapEnv map[string]string

func (m MapEnv) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m MapEnv) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func locate(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return &Error{File: file, Line: le.Locations[0][0].Start.Line, Err: errors.Unwrap(le)}
	}
	return &Error{File: file, Err: err}
}

// Line returns the first line of a location, or 0.
func Line(loc []parser.Range) int { return line(loc) }

func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

func appendUnique(xs []int, x int) []int {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// ProxyArgs are the predefined ARGs a RUN sees when given with --build-arg, even
// without an ARG instruction; they are left out of cache keys, as in BuildKit.
var ProxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
	"NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}
