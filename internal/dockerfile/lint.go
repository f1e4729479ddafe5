package dockerfile

import (
	"fmt"
	"github.com/agext/levenshtein"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Warning is one finding of BuildKit's build checks (the rules of its linter
// package, under the same names), or a notice about a directive.
type Warning struct {
	File string
	Line int
	// Rule is the check's name (StageNameCasing, JSONArgsRecommended, ...); empty
	// for a notice that is not a build check.
	Rule    string
	Message string
	URL     string
}

func (w Warning) String() string {
	loc := w.File
	if w.Line > 0 {
		loc = fmt.Sprintf("%s:%d", w.File, w.Line)
	}
	if w.Rule == "" {
		return fmt.Sprintf("%s: %s", loc, w.Message)
	}
	s := fmt.Sprintf("%s: %s: %s", loc, w.Rule, w.Message)
	if w.URL != "" {
		s += " (" + w.URL + ")"
	}
	return s
}

// ErrCheckFailed is returned (wrapped) when `# check=error=true` is set and a
// build check reported something.
var ErrCheckFailed = fmt.Errorf("build checks failed")

// LintError is the error to fail the build with under `# check=error=true`:
// nil unless that directive is set and a check reported something.
func (p *Plan) LintError() error {
	if !p.checkError {
		return nil
	}
	seen := map[string]bool{}
	var rules []string
	for _, w := range p.Warnings {
		if w.Rule != "" && !seen[w.Rule] {
			seen[w.Rule] = true
			rules = append(rules, w.Rule)
		}
	}
	if len(rules) == 0 {
		return nil
	}
	sort.Strings(rules)
	return &Error{File: p.File, Err: fmt.Errorf("%w (# check=error=true): %s", ErrCheckFailed, strings.Join(rules, ", "))}
}

// builtinFrontend is the frontend whose syntax slimbuild's parser implements.
const builtinFrontend = "docker/dockerfile"

// syntaxNotice returns a notice when the # syntax= directive names a frontend
// other than docker/dockerfile (any tag or digest), which slimbuild does not run.
func syntaxNotice(file string, src []byte) *Warning {
	v, _, loc, ok := parser.ParseDirective("syntax", src)
	if !ok || v == "" {
		return nil
	}
	if ref, err := name.ParseReference(v); err == nil && ref.Context().RegistryStr() == name.DefaultRegistry && ref.Context().RepositoryStr() == builtinFrontend {
		return nil
	}
	return &Warning{File: file, Line: line(loc), Message: fmt.Sprintf("# syntax=%s names a frontend slimbuild does not run; building with the built-in Dockerfile parser", v)}
}

// newLinter reads the # check= directive and returns a linter that appends what
// it reports to *out.
func newLinter(file string, src []byte, out *[]Warning) (*linter.Linter, error) {
	v, _, loc, _ := parser.ParseDirective("check", src)
	cfg, err := linter.ParseLintOptions(v)
	if err != nil {
		return nil, &Error{File: file, Line: line(loc), Err: fmt.Errorf("# check=%s: %w", v, err)}
	}
	cfg.Warn = func(rule, _, url, msg string, loc []parser.Range) {
		*out = append(*out, Warning{File: file, Line: line(loc), Rule: rule, Message: msg, URL: url})
	}
	return linter.New(cfg), nil
}

// lintStages runs the checks BuildKit makes on the whole file before building:
// instruction casing, stage names and the FROM lines.
func lintStages(lint *linter.Linter, lex *shell.Lex, stages []instructions.Stage, metaArgs []instructions.ArgCommand) {
	lintCasing(lint, stages)
	seen := map[string]bool{}
	for _, st := range stages {
		l := lint.WithMergedConfigFromComments(st.Comments)
		if st.Name == "scratch" || st.Name == "context" {
			l.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
		}
		if st.Name != "" && seen[st.Name] {
			l.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
		}
		seen[st.Name] = true
	}

	// FROM with the defaults alone (no --build-arg) must still name a valid image,
	// and may use only ARGs declared before the first FROM (or the platform ones).
	defaults := PlatformArgs()
	declared := map[string]bool{}
	for k := range defaults {
		declared[k] = true
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			declared[kv.Key] = true
			if kv.Value != nil {
				if v, err := expand(lex, *kv.Value, defaults); err == nil {
					defaults[kv.Key] = v
				}
			}
		}
	}
	for _, st := range stages {
		l := lint.WithMergedConfigFromComments(st.Comments)
		res, err := lex.ProcessWordWithMatches(st.BaseName, MapEnv(defaults))
		if err != nil {
			continue
		}
		undefinedInFrom(l, res, declared, st.Location)
		if _, err := name.ParseReference(res.Result); err != nil && res.Result != "scratch" && !seen[strings.ToLower(res.Result)] {
			l.Run(&linter.RuleInvalidDefaultArgInFrom, st.Location, linter.RuleInvalidDefaultArgInFrom.Format(st.BaseName))
		}
		if st.Platform == "" {
			continue
		}
		pres, err := lex.ProcessWordWithMatches(st.Platform, MapEnv(defaults))
		if err != nil {
			continue
		}
		undefinedInFrom(l, pres, declared, st.Location)
		if _, ok := pres.Matched["TARGETPLATFORM"]; ok && len(pres.Matched) == 1 && len(pres.Unmatched) == 0 && pres.Result == defaults["TARGETPLATFORM"] {
			l.Run(&linter.RuleRedundantTargetPlatform, st.Location, linter.RuleRedundantTargetPlatform.Format(st.Platform))
		}
		if len(pres.Matched) == 0 && len(pres.Unmatched) == 0 {
			os, arch, _ := strings.Cut(pres.Result, "/")
			arch, _, _ = strings.Cut(arch, "/")
			if !strings.Contains(st.Name, os) && (arch == "" || !strings.Contains(st.Name, arch)) {
				l.Run(&linter.RuleFromPlatformFlagConstDisallowed, st.Location, linter.RuleFromPlatformFlagConstDisallowed.Format(pres.Result))
			}
		}
	}
}

func undefinedInFrom(l *linter.Linter, res shell.ProcessWordResult, declared map[string]bool, loc []parser.Range) {
	var names []string
	for k := range res.Unmatched {
		if !declared[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	keys := make([]string, 0, len(declared))
	for k := range declared {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range names {
		l.Run(&linter.RuleUndefinedArgInFrom, loc, linter.RuleUndefinedArgInFrom.Format(k, closest(k, keys)))
	}
}

// closest suggests a declared name that differs from k by case or one edit.
func closest(k string, keys []string) string {
	for _, c := range keys {
		if strings.EqualFold(c, k) || levenshtein.Distance(strings.ToLower(c), strings.ToLower(k), nil) <= 1 {
			return c
		}
	}
	return ""
}

// lintCasing reports instructions whose keyword is mixed case, or whose case
// differs from the one most of the file uses.
func lintCasing(lint *linter.Linter, stages []instructions.Stage) {
	type kw struct {
		name string
		loc  []parser.Range
	}
	var all []kw
	for _, st := range stages {
		all = append(all, kw{st.OrigCmd, st.Location})
		for _, c := range st.Commands {
			all = append(all, kw{c.Name(), c.Location()})
		}
	}
	lower, upper := 0, 0
	for _, k := range all {
		switch k.name {
		case strings.ToLower(k.name):
			lower++
		case strings.ToUpper(k.name):
			upper++
		}
	}
	for _, k := range all {
		want := "uppercase"
		if lower > upper {
			want = "lowercase"
		}
		if (want == "lowercase" && k.name != strings.ToLower(k.name)) || (want == "uppercase" && k.name != strings.ToUpper(k.name)) {
			lint.Run(&linter.RuleConsistentInstructionCasing, k.loc, linter.RuleConsistentInstructionCasing.Format(k.name, want))
		}
	}
}

var (
	secretWord  = regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	allowedWord = regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

// lintCommands runs the per-instruction checks over one stage. (A base image's
// SHELL is not known here: JSONArgsRecommended counts only the SHELL of the
// stage and of the stages it is built from.)
func lintCommands(lint *linter.Linter, p *Plan, st *Stage) {
	var cmd, entrypoint, healthcheck []parser.Range
	once := func(prev *[]parser.Range, c instructions.Command) {
		if *prev != nil {
			// The earlier one is the instruction that has no effect.
			lint.Run(&linter.RuleMultipleInstructionsDisallowed, *prev, linter.RuleMultipleInstructionsDisallowed.Format(c.Name()))
		}
		*prev = c.Location()
	}
	secret := func(instr, key string, loc []parser.Range) {
		if secretWord.MatchString(key) && !allowedWord.MatchString(key) {
			lint.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instr, key))
		}
	}
	shell := false // a SHELL instruction was seen in this stage or its parents
	for b := st.BaseStage; b >= 0 && !shell; b = p.Stages[b].BaseStage {
		for _, c := range p.Stages[b].Commands {
			if _, ok := c.(*instructions.ShellCommand); ok {
				shell = true
			}
		}
	}
	for _, c := range st.Commands {
		l := lint.WithMergedConfigFromComments(commentsOf(c))
		switch c := c.(type) {
		case *instructions.ShellCommand:
			shell = true
		case *instructions.CmdCommand:
			once(&cmd, c)
			if c.PrependShell && !shell {
				l.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
			}
		case *instructions.EntrypointCommand:
			once(&entrypoint, c)
			if c.PrependShell && !shell {
				l.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
			}
		case *instructions.HealthCheckCommand:
			once(&healthcheck, c)
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				if kv.NoDelim {
					l.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
				}
				secret("ENV", kv.Key, c.Location())
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				if kv.NoDelim {
					l.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
				}
			}
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				secret("ARG", kv.Key, c.Location())
			}
		case *instructions.ExposeCommand:
			for _, p := range c.Ports {
				if strings.Contains(p, ":") {
					l.Run(&linter.RuleExposeInvalidFormat, c.Location(), linter.RuleExposeInvalidFormat.Format(p))
				}
				if _, proto, ok := strings.Cut(p, "/"); ok && proto != strings.ToLower(proto) {
					l.Run(&linter.RuleExposeProtoCasing, c.Location(), linter.RuleExposeProtoCasing.Format(p))
				}
			}
		}
	}
}

func commentsOf(c instructions.Command) []string {
	if cc, ok := c.(interface{ Comments() []string }); ok {
		return cc.Comments()
	}
	return nil
}
