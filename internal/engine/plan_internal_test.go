package engine

// The engine's planning, cache keys, ARG/ENV scoping and step ordering,
// through the real builder with the fakes of fakes_internal_test.go: these
// tests need no root, runc or overlayfs.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/slimbuild/slimbuild/internal/dockerfile"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

// TestFakeCacheKeys builds twice in one store, changing one thing in between,
// and checks which steps the second build took from the cache: a key must
// change with what can change the step's result, and only with that.
func TestFakeCacheKeys(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		files      map[string]string
		args       map[string]string
		// second build: replaced Dockerfile, changed files, build args
		dockerfile2 string
		files2      map[string]string
		args2       map[string]string
		want        map[string]bool // step text -> served from the cache
	}{
		{
			name:       "identical build is all cached",
			dockerfile: "FROM scratch\nARG V=1\nENV E=e\nRUN one\nCOPY a /a\nRUN two\n",
			files:      map[string]string{"a": "A"},
			want:       map[string]bool{"RUN one": true, "COPY a /a": true, "RUN two": true},
		},
		{
			name:       "build arg of an ARG in scope invalidates the RUNs after the ARG",
			dockerfile: "FROM scratch\nRUN before\nARG V=1\nRUN after\n",
			args:       map[string]string{"V": "1"},
			args2:      map[string]string{"V": "2"},
			want:       map[string]bool{"RUN before": true, "RUN after": false},
		},
		{
			name:       "build arg no ARG declares changes nothing",
			dockerfile: "FROM scratch\nRUN one\n",
			args:       map[string]string{"W": "1"},
			args2:      map[string]string{"W": "2"},
			want:       map[string]bool{"RUN one": true},
		},
		{
			name:       "global ARG not declared in the stage changes nothing",
			dockerfile: "ARG V=1\nFROM scratch\nRUN one\n",
			args:       map[string]string{"V": "1"},
			args2:      map[string]string{"V": "2"},
			want:       map[string]bool{"RUN one": true},
		},
		{
			name:       "global ARG declared in the stage invalidates",
			dockerfile: "ARG V=1\nFROM scratch\nRUN before\nARG V\nRUN after\n",
			args:       map[string]string{"V": "1"},
			args2:      map[string]string{"V": "2"},
			want:       map[string]bool{"RUN before": true, "RUN after": false},
		},
		{
			name:       "a proxy build arg reaches RUN but not its key",
			dockerfile: "FROM scratch\nRUN one\n",
			args:       map[string]string{"HTTP_PROXY": "http://a:1"},
			args2:      map[string]string{"HTTP_PROXY": "http://b:2"},
			want:       map[string]bool{"RUN one": true},
		},
		{
			name:        "changed ARG default invalidates from its first use",
			dockerfile:  "FROM scratch\nRUN before\nARG V=1\nRUN after\n",
			dockerfile2: "FROM scratch\nRUN before\nARG V=2\nRUN after\n",
			want:        map[string]bool{"RUN before": true, "RUN after": false},
		},
		{
			// As in BuildKit, where ENV is the RUN's environment and a COPY's
			// operation does not see it.
			name:        "changed ENV invalidates the RUNs after it, not a COPY",
			dockerfile:  "FROM scratch\nRUN before\nENV E=1\nCOPY a /a\nRUN after\n",
			dockerfile2: "FROM scratch\nRUN before\nENV E=2\nCOPY a /a\nRUN after\n",
			files:       map[string]string{"a": "A"},
			want:        map[string]bool{"RUN before": true, "COPY a /a": true, "RUN after": false},
		},
		{
			name:       "changed file invalidates its COPY and everything after",
			dockerfile: "FROM scratch\nRUN before\nCOPY a /a\nRUN after\n",
			files:      map[string]string{"a": "A", "b": "B"},
			files2:     map[string]string{"a": "A2"},
			want:       map[string]bool{"RUN before": true, "COPY a /a": false, "RUN after": false},
		},
		{
			name:       "changed file that no COPY selects changes nothing",
			dockerfile: "FROM scratch\nRUN before\nCOPY a /a\nRUN after\n",
			files:      map[string]string{"a": "A", "b": "B"},
			files2:     map[string]string{"b": "B2"},
			want:       map[string]bool{"RUN before": true, "COPY a /a": true, "RUN after": true},
		},
		{
			name:       "changed file that .dockerignore leaves out changes nothing",
			dockerfile: "FROM scratch\nCOPY . /src/\nRUN after\n",
			files:      map[string]string{".dockerignore": "b\n", "a": "A", "b": "B"},
			files2:     map[string]string{"b": "B2"},
			want:       map[string]bool{"COPY . /src/": true, "RUN after": true},
		},
		{
			name:        "changed RUN invalidates itself and what follows only",
			dockerfile:  "FROM scratch\nRUN one\nRUN two\nRUN three\n",
			dockerfile2: "FROM scratch\nRUN one\nRUN 2\nRUN three\n",
			want:        map[string]bool{"RUN one": true, "RUN 2": false, "RUN three": false},
		},
		{
			name:        "changed stage a COPY --from reads invalidates that COPY",
			dockerfile:  "FROM scratch AS dep\nRUN make v1\nFROM scratch\nRUN before\nCOPY --from=dep /out /out\n",
			dockerfile2: "FROM scratch AS dep\nRUN make v2\nFROM scratch\nRUN before\nCOPY --from=dep /out /out\n",
			want:        map[string]bool{"RUN before": true, "COPY --from=dep /out /out": false},
		},
	}
	makeOut := func(c runtime.Container) (int, error) {
		return 0, writeIn(c, "/out", strings.Join(c.Process.Args, " "))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(tt.files)
			if files == nil {
				files = map[string]string{}
			}
			files["Dockerfile"] = tt.dockerfile
			e := newFakeEnv(t, files)
			first := e.mustBuild(Options{BuildArgs: tt.args}, makeOut)
			for step := range tt.want {
				if _, ok := first.steps[step]; !ok && tt.dockerfile2 == "" {
					t.Fatalf("first build has no step %q (steps %v)", step, first.order)
				}
			}
			e.write(tt.files2)
			if tt.dockerfile2 != "" {
				e.write(map[string]string{"Dockerfile": tt.dockerfile2})
			}
			args := tt.args
			if tt.args2 != nil {
				args = tt.args2
			}
			second := e.mustBuild(Options{BuildArgs: args}, makeOut)
			for step, want := range tt.want {
				got, ok := second.steps[step]
				if !ok {
					t.Fatalf("second build has no step %q (steps %v)", step, second.order)
				}
				if got != want {
					t.Errorf("step %q: cached %v, want %v", step, got, want)
				}
			}
			// What came from the cache did not run.
			for _, c := range second.runner.runs {
				if text := "RUN " + c.Process.Args[len(c.Process.Args)-1]; second.steps[text] {
					t.Errorf("%q ran although it was cached", text)
				}
			}
		})
	}
}

// TestFakeCachedBuildSameImage checks that a build served whole from the cache
// gives the image the first build made.
func TestFakeCachedBuildSameImage(t *testing.T) {
	e := newFakeEnv(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY a /a\nRUN gen\n",
		"a":          "A",
	})
	gen := func(c runtime.Container) (int, error) { return 0, writeIn(c, "/gen", "G") }
	first := e.mustBuild(Options{}, gen)
	second := e.mustBuild(Options{}, gen)
	if len(second.runner.runs) != 0 {
		t.Errorf("a cached build ran %v", second.runner.ran())
	}
	if second.res.CachedSteps != second.res.Steps {
		t.Errorf("cached %d of %d steps", second.res.CachedSteps, second.res.Steps)
	}
	if first.res.Digest != second.res.Digest {
		t.Errorf("digest %s, then %s", first.res.Digest, second.res.Digest)
	}
	want := map[string]string{"/a": "A", "/gen": "G"}
	if got := imageFiles(t, second.res); !maps.Equal(got, want) {
		t.Errorf("image files %v, want %v", got, want)
	}
}

// unset marks a variable that must not be in a RUN's environment.
const unset = "\x00unset"

// TestFakeScoping checks what environment and working directory the last RUN of
// a Dockerfile gets, against BuildKit's rules for ARG and ENV.
func TestFakeScoping(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]string
		target     string
		env        map[string]string // in the last RUN's environment, or unset
		cwd        string            // "" for "/"
		user       string
		configEnv  map[string]string // in the image's Env, or unset
	}{
		{
			name:       "global ARG is not in a stage that does not declare it",
			dockerfile: "ARG V=g\nFROM scratch\nRUN x\n",
			env:        map[string]string{"V": unset},
		},
		{
			name:       "global ARG redeclared without a value takes the global default",
			dockerfile: "ARG V=g\nFROM scratch\nARG V\nRUN x\n",
			env:        map[string]string{"V": "g"},
		},
		{
			name:       "build arg overrides the global default",
			dockerfile: "ARG V=g\nFROM scratch\nARG V\nRUN x\n",
			args:       map[string]string{"V": "b"},
			env:        map[string]string{"V": "b"},
		},
		{
			name:       "stage ARG default, and a build arg over it",
			dockerfile: "FROM scratch\nARG V=d\nARG W=d\nRUN x\n",
			args:       map[string]string{"W": "b"},
			env:        map[string]string{"V": "d", "W": "b"},
		},
		{
			name:       "ARG without a value or a build arg is unset",
			dockerfile: "FROM scratch\nARG V\nRUN x\n",
			env:        map[string]string{"V": unset},
		},
		{
			name:       "ARG is in scope only after its declaration",
			dockerfile: "FROM scratch\nRUN x\nARG V=1\n",
			env:        map[string]string{"V": unset},
		},
		{
			name:       "ENV overrides an earlier ARG",
			dockerfile: "FROM scratch\nARG V=a\nENV V=e\nRUN x\n",
			args:       map[string]string{"V": "b"},
			env:        map[string]string{"V": "e"},
			configEnv:  map[string]string{"V": "e"},
		},
		{
			name:       "ARG after ENV wins in RUN but not in the image",
			dockerfile: "FROM scratch\nENV V=e\nARG V=a\nRUN x\n",
			env:        map[string]string{"V": "a"},
			configEnv:  map[string]string{"V": "e"},
		},
		{
			name:       "ENV substitutes ARG values and earlier ENV",
			dockerfile: "FROM scratch\nARG V=a\nENV W=${V}-w X=$V${V:+set}\nENV Y=${W}/y Z=${NONE:-dflt}\nRUN x\n",
			env:        map[string]string{"W": "a-w", "X": "aset", "Y": "a-w/y", "Z": "dflt"},
			configEnv:  map[string]string{"V": unset, "W": "a-w"},
		},
		{
			name:       "ARG default expands earlier ARGs, not undeclared build args",
			dockerfile: "FROM scratch\nARG A=1\nARG B=${A}2 C=${U:-none}\nRUN x\n",
			args:       map[string]string{"U": "given"},
			env:        map[string]string{"B": "12", "C": "none", "U": unset},
		},
		{
			name:       "escaped dollar stays literal",
			dockerfile: "FROM scratch\nARG A=1\nENV L=\\$A R=$A\nRUN x\n",
			env:        map[string]string{"L": "$A", "R": "1"},
		},
		{
			name:       "ARG in a stage is not in another stage",
			dockerfile: "FROM scratch AS one\nARG V=1\nRUN one\nFROM scratch\nRUN x\n",
			env:        map[string]string{"V": unset},
		},
		{
			name:       "a stage built FROM another keeps its ENV and its ARGs",
			dockerfile: "FROM scratch AS one\nARG V=1\nENV E=1\nFROM one\nRUN x\n",
			env:        map[string]string{"V": "1", "E": "1"},
			configEnv:  map[string]string{"E": "1", "V": unset},
		},
		{
			name:       "global ARG in FROM picks the base stage",
			dockerfile: "ARG BASE=one\nFROM scratch AS one\nENV FROM=one\nFROM scratch AS two\nENV FROM=two\nFROM $BASE\nRUN x\n",
			args:       map[string]string{"BASE": "two"},
			env:        map[string]string{"FROM": "two"},
		},
		{
			name:       "the target's ARGs, not another stage's",
			dockerfile: "FROM scratch AS one\nARG V=1\nRUN x\nFROM scratch AS two\nARG V=2\nRUN y\n",
			target:     "one",
			env:        map[string]string{"V": "1"},
		},
		{
			name:       "WORKDIR expands ENV and is relative to the last one",
			dockerfile: "FROM scratch\nENV D=/app\nWORKDIR $D\nWORKDIR sub\nRUN x\n",
			cwd:        "/app/sub",
		},
		{
			name:       "USER reaches RUN as written, after expansion",
			dockerfile: "FROM scratch\nARG U=1000\nUSER $U:2000\nRUN x\n",
			user:       "1000:2000",
		},
		{
			name:       "platform ARGs when declared",
			dockerfile: "FROM scratch\nARG TARGETOS\nRUN x\n",
			env:        map[string]string{"TARGETOS": "linux", "TARGETARCH": unset},
		},
		{
			name:       "a proxy build arg reaches RUN without an ARG",
			dockerfile: "FROM scratch\nRUN x\n",
			args:       map[string]string{"HTTPS_PROXY": "http://p:3128", "OTHER": "o"},
			env:        map[string]string{"HTTPS_PROXY": "http://p:3128", "OTHER": unset},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": tt.dockerfile})
			fb := e.mustBuild(Options{BuildArgs: tt.args, Target: tt.target}, nil)
			runs := fb.runner.runs
			if len(runs) == 0 {
				t.Fatal("no RUN ran")
			}
			last := runs[len(runs)-1]
			env := envOf(last)
			for k, want := range tt.env {
				got, ok := env[k]
				if want == unset {
					if ok {
						t.Errorf("RUN env has %s=%q, want it unset", k, got)
					}
					continue
				}
				if !ok || got != want {
					t.Errorf("RUN env %s=%q (set %v), want %q; env %q", k, got, ok, want, last.Process.Env)
				}
			}
			wantCwd := tt.cwd
			if wantCwd == "" {
				wantCwd = "/"
			}
			if last.Process.Cwd != wantCwd {
				t.Errorf("RUN cwd %q, want %q", last.Process.Cwd, wantCwd)
			}
			if last.User != tt.user {
				t.Errorf("RUN user %q, want %q", last.User, tt.user)
			}
			if tt.configEnv != nil {
				cf, err := fb.res.Image.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				cenv := dockerfile.EnvMap(cf.Config.Env)
				for k, want := range tt.configEnv {
					got, ok := cenv[k]
					if want == unset {
						if ok {
							t.Errorf("image Env has %s=%q, want it unset", k, got)
						}
					} else if got != want {
						t.Errorf("image Env %s=%q, want %q", k, got, want)
					}
				}
			}
		})
	}
}

// TestFakeRunProcess checks the process a RUN asks for: the arguments of the
// shell and exec forms, SHELL, heredocs, the network.
func TestFakeRunProcess(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		args       []string
		network    runtime.Network
		// script is the content of a file mounted at its destination, when a
		// heredoc with a shebang is the whole command.
		scriptAt, script string
	}{
		{
			name:       "shell form",
			dockerfile: "FROM scratch\nRUN echo  a   \"b c\"\n",
			args:       []string{"/bin/sh", "-c", `echo  a   "b c"`},
		},
		{
			name:       "exec form",
			dockerfile: "FROM scratch\nRUN [\"/bin/prog\", \"a b\", \"$HOME\"]\n",
			args:       []string{"/bin/prog", "a b", "$HOME"},
		},
		{
			name:       "SHELL changes the shell of later shell forms",
			dockerfile: "FROM scratch\nSHELL [\"/bin/bash\", \"-eu\", \"-c\"]\nRUN echo hi\n",
			args:       []string{"/bin/bash", "-eu", "-c", "echo hi"},
		},
		{
			name:       "heredoc is the shell's script",
			dockerfile: "# syntax=docker/dockerfile:1\nFROM scratch\nRUN <<EOF\necho one\necho two\nEOF\n",
			args:       []string{"/bin/sh", "-c", "echo one\necho two\n"},
		},
		{
			name:       "heredoc with a shebang runs as a file",
			dockerfile: "# syntax=docker/dockerfile:1\nFROM scratch\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n",
			args:       []string{"/dev/pipes/EOF"},
			scriptAt:   "/dev/pipes/EOF",
			script:     "#!/usr/bin/env python3\nprint(1)\n",
		},
		{
			name:       "heredoc as a command's input",
			dockerfile: "# syntax=docker/dockerfile:1\nFROM scratch\nRUN cat > /f <<EOF\nline\nEOF\n",
			args:       []string{"/bin/sh", "-c", "cat > /f <<EOF\nline\nEOF\n"},
		},
		{
			name:       "RUN --network=none",
			dockerfile: "FROM scratch\nRUN --network=none x\n",
			args:       []string{"/bin/sh", "-c", "x"},
			network:    runtime.NetworkNone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": tt.dockerfile})
			var script string
			fb := e.mustBuild(Options{}, func(c runtime.Container) (int, error) {
				for _, m := range c.Process.Mounts {
					if m.Destination == tt.scriptAt {
						data, err := os.ReadFile(m.Source)
						script = string(data)
						return 0, err
					}
				}
				return 0, nil
			})
			if len(fb.runner.runs) != 1 {
				t.Fatalf("%d runs, want 1", len(fb.runner.runs))
			}
			p := fb.runner.runs[0].Process
			if !slices.Equal(p.Args, tt.args) {
				t.Errorf("args %q, want %q", p.Args, tt.args)
			}
			if p.Network != tt.network {
				t.Errorf("network %v, want %v", p.Network, tt.network)
			}
			if script != tt.script {
				t.Errorf("script %q, want %q", script, tt.script)
			}
		})
	}
}

// TestFakeStageOrder checks which stages run and in what order: only those
// the target needs, each after the stages it reads.
func TestFakeStageOrder(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		target     string
		// before lists pairs: the first RUN must run before the second.
		before [][2]string
		ran    []string // every RUN that ran, in any order
		files  map[string]string
	}{
		{
			name:       "a stage the target does not need does not run",
			dockerfile: "FROM scratch AS unused\nRUN unused\nFROM scratch AS dep\nRUN dep\nFROM scratch\nCOPY --from=dep /dep /dep\nRUN final\n",
			ran:        []string{"dep", "final"},
			before:     [][2]string{{"dep", "final"}},
			files:      map[string]string{"/dep": "dep", "/final": "final"},
		},
		{
			name:       "the target stops the build at its stage",
			dockerfile: "FROM scratch AS dep\nRUN dep\nFROM scratch AS mid\nRUN mid\nFROM mid\nRUN final\n",
			target:     "mid",
			ran:        []string{"mid"},
			files:      map[string]string{"/mid": "mid"},
		},
		{
			name:       "FROM a stage runs the base first and keeps its files",
			dockerfile: "FROM scratch AS base\nRUN base\nFROM base\nRUN final\n",
			ran:        []string{"base", "final"},
			before:     [][2]string{{"base", "final"}},
			files:      map[string]string{"/base": "base", "/final": "final"},
		},
		{
			name:       "COPY --from of several stages, by name and by index",
			dockerfile: "FROM scratch AS a\nRUN a\nFROM scratch AS b\nRUN b\nFROM scratch\nCOPY --from=b /b /b\nCOPY --from=0 /a /a\nRUN final\n",
			ran:        []string{"a", "b", "final"},
			before:     [][2]string{{"a", "final"}, {"b", "final"}},
			files:      map[string]string{"/a": "a", "/b": "b", "/final": "final"},
		},
		{
			name:       "a chain of stages runs in order",
			dockerfile: "FROM scratch AS one\nRUN one\nFROM scratch AS two\nCOPY --from=one /one /one\nRUN two\nFROM scratch\nCOPY --from=two /two /two\nRUN final\n",
			ran:        []string{"one", "two", "final"},
			before:     [][2]string{{"one", "two"}, {"two", "final"}},
			files:      map[string]string{"/two": "two", "/final": "final"},
		},
	}
	// Each RUN writes a file named after its command.
	do := func(c runtime.Container) (int, error) {
		cmd := c.Process.Args[len(c.Process.Args)-1]
		return 0, writeIn(c, "/"+cmd, cmd)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": tt.dockerfile})
			fb := e.mustBuild(Options{Target: tt.target}, do)
			ran := fb.runner.ran()
			if got, want := slices.Sorted(slices.Values(ran)), slices.Sorted(slices.Values(tt.ran)); !slices.Equal(got, want) {
				t.Errorf("ran %q, want %q", ran, tt.ran)
			}
			for _, p := range tt.before {
				if i, j := slices.Index(ran, p[0]), slices.Index(ran, p[1]); i < 0 || j < 0 || i > j {
					t.Errorf("%s ran at %d and %s at %d; want the first before the second", p[0], i, p[1], j)
				}
			}
			if got := imageFiles(t, fb.res); !maps.Equal(got, tt.files) {
				t.Errorf("image files %v, want %v", got, tt.files)
			}
		})
	}
}

// TestFakeFailedRun checks that a failing RUN fails the build with its file,
// line and exit code, that nothing after it runs, and that no snapshot stays
// (the harness checks that).
func TestFakeFailedRun(t *testing.T) {
	e := newFakeEnv(t, map[string]string{"Dockerfile": "FROM scratch AS dep\nRUN fail\nFROM scratch\nCOPY --from=dep /x /x\nRUN after\n"})
	fb, err := e.build(Options{}, func(c runtime.Container) (int, error) {
		if c.Process.Args[len(c.Process.Args)-1] == "fail" {
			return 3, writeIn(c, "/x", "half")
		}
		return 0, nil
	})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a StepError", err)
	}
	if se.ExitCode != 3 || se.Line != 2 || se.File != "Dockerfile" || se.Stage != "dep" {
		t.Errorf("step error %+v, want Dockerfile:2, stage dep, exit code 3", se)
	}
	if ran := fb.runner.ran(); !slices.Equal(ran, []string{"fail"}) {
		t.Errorf("ran %q, want only the failing RUN", ran)
	}
	// A failed step records nothing: the next build runs it again.
	fb, _ = e.build(Options{}, func(runtime.Container) (int, error) { return 1, nil })
	if ran := fb.runner.ran(); !slices.Equal(ran, []string{"fail"}) {
		t.Errorf("second build ran %q, want the failed RUN again", ran)
	}
}

// TestFakeCopySources checks which context files a COPY or ADD in the target
// stage selects and where they land (the stage ships, so the COPY streams its
// layer straight from the context).
func TestFakeCopySources(t *testing.T) {
	ctx := map[string]string{
		"a.txt": "A", "b.txt": "B", "c.md": "C",
		"dir/x": "X", "dir/sub/y": "Y", "dir/skip.log": "L",
		"other/z": "Z",
	}
	tests := []struct {
		name       string
		dockerfile string
		ignore     string // .dockerignore
		args       map[string]string
		want       map[string]string // the image's files
		wantErr    string
	}{
		{
			name:       "file to a file",
			dockerfile: "COPY a.txt /f\n",
			want:       map[string]string{"/f": "A"},
		},
		{
			name:       "file into a directory",
			dockerfile: "COPY a.txt /d/\n",
			want:       map[string]string{"/d/a.txt": "A"},
		},
		{
			name:       "glob into a directory",
			dockerfile: "COPY *.txt /d/\n",
			want:       map[string]string{"/d/a.txt": "A", "/d/b.txt": "B"},
		},
		{
			name:       "a directory copies its contents",
			dockerfile: "COPY dir /d\n",
			want:       map[string]string{"/d/x": "X", "/d/sub/y": "Y", "/d/skip.log": "L"},
		},
		{
			name:       "destination from ENV and ARG",
			dockerfile: "ENV D=/env\nARG SUB=s\nCOPY a.txt $D/${SUB}/\n",
			args:       map[string]string{"SUB": "built"},
			want:       map[string]string{"/env/built/a.txt": "A"},
		},
		{
			name:       ".dockerignore",
			dockerfile: "COPY . /c/\n",
			ignore:     "*.txt\ndir/sub\nother\nDockerfile\n.dockerignore\n",
			want:       map[string]string{"/c/c.md": "C", "/c/dir/x": "X", "/c/dir/skip.log": "L"},
		},
		{
			name:       ".dockerignore with an exception",
			dockerfile: "COPY . /c/\n",
			ignore:     "*.txt\n!b.txt\ndir/sub\nother\nDockerfile\n.dockerignore\n",
			want:       map[string]string{"/c/b.txt": "B", "/c/c.md": "C", "/c/dir/x": "X", "/c/dir/skip.log": "L"},
		},
		{
			name:       "COPY --exclude",
			dockerfile: "# syntax=docker/dockerfile:1.7-labs\nCOPY --exclude=*.log --exclude=sub dir /d\n",
			want:       map[string]string{"/d/x": "X"},
		},
		{
			name:       "COPY --parents keeps the source's directories",
			dockerfile: "# syntax=docker/dockerfile:1.7-labs\nCOPY --parents dir/sub/y other/z /p/\n",
			want:       map[string]string{"/p/dir/sub/y": "Y", "/p/other/z": "Z"},
		},
		{
			name:       "heredoc COPY",
			dockerfile: "# syntax=docker/dockerfile:1\nCOPY <<EOF /h\nhello\nEOF\n",
			want:       map[string]string{"/h": "hello\n"},
		},
		{
			name:       "several sources need a directory destination",
			dockerfile: "COPY a.txt b.txt /f\n",
			wantErr:    "the destination must be a directory and end with a /",
		},
		{
			name:       "a source outside the context is not found",
			dockerfile: "COPY ../a.txt /f\n",
			wantErr:    "../a.txt",
		},
		{
			name:       "a pattern that matches nothing",
			dockerfile: "COPY *.nothing /d/\n",
			wantErr:    "*.nothing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(ctx)
			files["Dockerfile"] = "FROM scratch\n" + tt.dockerfile
			if tt.ignore != "" {
				files[".dockerignore"] = tt.ignore
			}
			if i := strings.Index(tt.dockerfile, "# syntax"); i == 0 {
				line, rest, _ := strings.Cut(tt.dockerfile, "\n")
				files["Dockerfile"] = line + "\nFROM scratch\n" + rest
			}
			e := newFakeEnv(t, files)
			fb, err := e.build(Options{BuildArgs: tt.args}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "Dockerfile:") {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := imageFiles(t, fb.res); !maps.Equal(got, tt.want) {
				t.Errorf("image files %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFakeConfig checks the image config the metadata instructions make.
func TestFakeConfig(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		opts       Options
		check      func(cfg *v1.Config) string // what is wrong, "" for nothing
	}{
		{
			name:       "CMD shell form uses SHELL",
			dockerfile: "FROM scratch\nSHELL [\"/bin/ash\", \"-c\"]\nCMD run me\n",
			check: func(c *v1.Config) string {
				return diffStrings("Cmd", c.Cmd, []string{"/bin/ash", "-c", "run me"})
			},
		},
		{
			name:       "ENTRYPOINT keeps a CMD of its own stage",
			dockerfile: "FROM scratch\nCMD [\"c\"]\nENTRYPOINT [\"/e\"]\n",
			check: func(c *v1.Config) string {
				return diffStrings("Cmd", c.Cmd, []string{"c"}) + diffStrings("Entrypoint", c.Entrypoint, []string{"/e"})
			},
		},
		{
			name:       "ENTRYPOINT clears a CMD from the base",
			dockerfile: "FROM scratch AS base\nCMD [\"c\"]\nFROM base\nENTRYPOINT [\"/e\"]\n",
			check: func(c *v1.Config) string {
				return diffStrings("Cmd", c.Cmd, nil)
			},
		},
		{
			name:       "LABEL expands ARGs; --label wins",
			dockerfile: "FROM scratch\nARG V=1\nLABEL a=$V b=x c=\"two words\"\n",
			opts:       Options{BuildArgs: map[string]string{"V": "2"}, Labels: map[string]string{"b": "opt"}},
			check: func(c *v1.Config) string {
				if want := map[string]string{"a": "2", "b": "opt", "c": "two words"}; !maps.Equal(c.Labels, want) {
					return fmt.Sprintf("labels %v, want %v", c.Labels, want)
				}
				return ""
			},
		},
		{
			name:       "EXPOSE, VOLUME, STOPSIGNAL, USER",
			dockerfile: "FROM scratch\nARG P=80\nEXPOSE $P 53/udp\nVOLUME /data\nSTOPSIGNAL SIGTERM\nUSER app\n",
			check: func(c *v1.Config) string {
				var bad []string
				for _, p := range []string{"80/tcp", "53/udp"} {
					if _, ok := c.ExposedPorts[p]; !ok || len(c.ExposedPorts) != 2 {
						bad = append(bad, fmt.Sprintf("exposed %v, want 80/tcp and 53/udp", c.ExposedPorts))
						break
					}
				}
				if _, ok := c.Volumes["/data"]; !ok {
					bad = append(bad, fmt.Sprintf("volumes %v", c.Volumes))
				}
				if c.StopSignal != "SIGTERM" || c.User != "app" {
					bad = append(bad, fmt.Sprintf("stop signal %q, user %q", c.StopSignal, c.User))
				}
				return strings.Join(bad, "; ")
			},
		},
		{
			name:       "ENV keeps its order and replaces in place",
			dockerfile: "FROM scratch\nENV A=1 B=2\nENV A=3\n",
			check: func(c *v1.Config) string {
				return diffStrings("Env", c.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=3", "B=2"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": tt.dockerfile})
			fb := e.mustBuild(tt.opts, nil)
			cf, err := fb.res.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if bad := tt.check(&cf.Config); bad != "" {
				t.Error(bad)
			}
		})
	}
}

func diffStrings(what string, got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	return fmt.Sprintf("%s %q, want %q; ", what, got, want)
}

// TestFakeNoCache checks that --no-cache runs every step again and
// --no-cache-filter only the named stage's (whose dependants follow, their
// input having been made again).
func TestFakeNoCache(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ran  []string
	}{
		{name: "cache", ran: nil},
		{name: "no cache", opts: Options{NoCache: true}, ran: []string{"dep", "final"}},
		{name: "no cache for the final stage", opts: Options{NoCacheFilter: []string{"FINAL"}}, ran: []string{"final"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": "FROM scratch AS dep\nRUN dep\nFROM scratch AS final\nCOPY --from=dep /dep /dep\nRUN final\n"})
			do := func(c runtime.Container) (int, error) {
				cmd := c.Process.Args[len(c.Process.Args)-1]
				return 0, writeIn(c, "/"+cmd, cmd)
			}
			e.mustBuild(Options{}, do)
			fb := e.mustBuild(tt.opts, do)
			if ran := fb.runner.ran(); !slices.Equal(ran, tt.ran) {
				t.Errorf("second build ran %q, want %q", ran, tt.ran)
			}
		})
	}
}

// TestFakeEpochReproducible builds the same Dockerfile in two stores, at
// different times, with a source date epoch: the images must be the same.
func TestFakeEpochReproducible(t *testing.T) {
	files := map[string]string{
		"Dockerfile": "FROM scratch AS dep\nRUN dep\nFROM scratch\nCOPY a /a\nCOPY --from=dep /dep /dep\nRUN final\nENV X=1\n",
		"a":          "A",
	}
	do := func(c runtime.Container) (int, error) {
		cmd := c.Process.Args[len(c.Process.Args)-1]
		return 0, writeIn(c, "/"+cmd, cmd)
	}
	var digests []v1.Hash
	for i := range 2 {
		e := newFakeEnv(t, files)
		if i == 1 {
			// Later context files: only the epoch may date them.
			later := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(e.dir, "a"), later, later)
		}
		fb := e.mustBuild(Options{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}}, do)
		digests = append(digests, fb.res.Digest)
		cf, err := fb.res.Image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Unix(1700000000, 0).UTC(); !cf.Created.Time.Equal(want) {
			t.Errorf("created %v, want %v", cf.Created.Time, want)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("digests %s and %s, want one", digests[0], digests[1])
	}
}

// TestFakeRunMounts checks what a RUN --mount gives the process, that its
// mount point stays out of the layer, and what enters the step's key.
func TestFakeRunMounts(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "tok")
	tests := []struct {
		name  string
		run   string // the target's RUN, after "FROM scratch AS dep\nRUN dep\nFROM scratch\n"
		check func(c runtime.Container) string
	}{
		{
			name: "tmpfs with a size, relative target",
			run:  "RUN --mount=type=tmpfs,target=t,size=1m x",
			check: func(c runtime.Container) string {
				m, ok := mountAt(c, "/t")
				if !ok || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=1048576") {
					return fmt.Sprintf("mounts %+v, want a tmpfs of 1MiB at /t", c.Process.Mounts)
				}
				return ""
			},
		},
		{
			name: "rw bind of a context directory is a throwaway copy",
			run:  "RUN --mount=type=bind,source=dir,target=/src,rw x",
			check: func(c runtime.Container) string {
				m, ok := mountAt(c, "/src")
				if !ok {
					return fmt.Sprintf("mounts %+v, want one at /src", c.Process.Mounts)
				}
				data, err := os.ReadFile(filepath.Join(m.Source, "f"))
				if err != nil || string(data) != "F" {
					return fmt.Sprintf("/src/f reads %q, %v", data, err)
				}
				if slices.Contains(m.Options, "ro") {
					return "a bind mount with rw is read-only"
				}
				// Written through the mount, lost with it.
				return errString(os.WriteFile(filepath.Join(m.Source, "written"), []byte("w"), 0o644))
			},
		},
		{
			name: "bind from a stage",
			run:  "RUN --mount=type=bind,from=dep,source=/dep,target=/d x",
			check: func(c runtime.Container) string {
				m, ok := mountAt(c, "/d")
				if !ok {
					return fmt.Sprintf("mounts %+v, want one at /d", c.Process.Mounts)
				}
				if data, err := os.ReadFile(m.Source); err != nil || string(data) != "dep" {
					return fmt.Sprintf("/d reads %q, %v", data, err)
				}
				if !slices.Contains(m.Options, "ro") {
					return "a bind mount is read-only unless rw"
				}
				return ""
			},
		},
		{
			name: "secret as an environment variable",
			run:  "RUN --mount=type=secret,id=tok,env=TOK x",
			check: func(c runtime.Container) string {
				if v := envOf(c)["TOK"]; v != "s3cret" {
					return fmt.Sprintf("TOK=%q, want the secret", v)
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
				t.Fatal(err)
			}
			e := newFakeEnv(t, map[string]string{
				"Dockerfile": "FROM scratch AS dep\nRUN dep\nFROM scratch\n" + tt.run + "\n",
				"dir/f":      "F",
			})
			opts := Options{Secrets: map[string]string{"tok": secret}}
			var bad string
			do := func(c runtime.Container) (int, error) {
				cmd := c.Process.Args[len(c.Process.Args)-1]
				if cmd == "dep" {
					return 0, writeIn(c, "/dep", "dep")
				}
				bad = tt.check(c)
				return 0, writeIn(c, "/out", "out")
			}
			fb := e.mustBuild(opts, do)
			if bad != "" {
				t.Error(bad)
			}
			if _, err := os.Lstat(filepath.Join(e.dir, "dir", "written")); err == nil {
				t.Error("a write through a bind mount reached the context")
			}
			// Mount points are not in the layer; only what the RUN wrote is.
			if got, want := imageFiles(t, fb.res), map[string]string{"/out": "out"}; !maps.Equal(got, want) {
				t.Errorf("image files %v, want %v", got, want)
			}
			// A changed secret is not a changed step.
			if err := os.WriteFile(secret, []byte("other"), 0o600); err != nil {
				t.Fatal(err)
			}
			if fb := e.mustBuild(opts, do); len(fb.runner.runs) != 0 {
				t.Errorf("second build ran %q, want all cached", fb.runner.ran())
			}
		})
	}
}

func mountAt(c runtime.Container, dest string) (specs.Mount, bool) {
	for _, m := range c.Process.Mounts {
		if m.Destination == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func errString(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestFakeStopping checks that a build stops, and lets go of every snapshot,
// when it is cancelled during a RUN or when one of two concurrent stages
// fails: the other's RUN is cancelled, and the stage after both never runs.
func TestFakeStopping(t *testing.T) {
	dockerfile := "FROM scratch AS a\nRUN a\nFROM scratch AS b\nRUN b\nFROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN final\n"
	tests := []struct {
		name   string
		failA  bool // RUN a fails; else the build is cancelled
		wantIs error
	}{
		{name: "cancelled during RUN", wantIs: context.Canceled},
		{name: "a sibling stage fails", failA: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEnv(t, map[string]string{"Dockerfile": dockerfile})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			fb, err := e.buildCtx(ctx, Options{}, func(runCtx context.Context, c runtime.Container) (int, error) {
				switch c.Process.Args[len(c.Process.Args)-1] {
				case "a":
					<-started // b is running
					if tt.failA {
						return 1, nil
					}
					cancel()
					<-runCtx.Done()
					return 0, errors.New("killed")
				case "b":
					close(started)
					// Runs until the build is stopped, as a real RUN is
					// killed with its container.
					<-runCtx.Done()
					return 0, errors.New("killed")
				}
				return 0, nil
			})
			if tt.failA {
				var se *StepError
				if !errors.As(err, &se) || se.Stage != "a" {
					t.Fatalf("error %v, want stage a's StepError", err)
				}
			} else if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %v, want %v", err, tt.wantIs)
			}
			if ran := fb.runner.ran(); slices.Contains(ran, "final") || len(ran) != 2 {
				t.Errorf("ran %q, want a and b only", ran)
			}
		})
	}
}

// TestDockerfileNotARegularFile: a Dockerfile that is a FIFO (a hostile
// context's; reading it would wait forever) or a directory is refused at once,
// naming it.
func TestDockerfileNotARegularFile(t *testing.T) {
	for _, name := range []string{"fifo", "dir"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			df := filepath.Join(dir, "Dockerfile")
			var err error
			if name == "fifo" {
				err = unix.Mkfifo(df, 0o644)
			} else {
				err = os.Mkdir(df, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := Check(Options{ContextDir: dir}); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), df) {
					t.Fatalf("err = %v, want the Dockerfile refused by name", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still reading the Dockerfile after 10 s")
			}
		})
	}
}
