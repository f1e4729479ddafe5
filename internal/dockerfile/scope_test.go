package dockerfile

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// TestImageDating checks the config created and history times of a scope whose
// base image is newer than the epoch, with and without the epoch.
func TestImageDating(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0).UTC()
	baseOld := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	baseNew := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC) // after the epoch
	stepTime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	dated := func(e *time.Time) *v1.ConfigFile {
		s := &Scope{Created: baseNew, Epoch: e}
		s.Image.History = []v1.History{
			{CreatedBy: "base 1", Created: v1.Time{Time: baseOld}},
			{CreatedBy: "base 2", Created: v1.Time{Time: baseNew}},
		}
		s.AddHistory(&instructions.EnvCommand{}, nil)
		st := stepTime
		s.AddHistory(&instructions.RunCommand{}, &st)
		s.AddHistory(&instructions.CmdCommand{}, nil)
		return s.ConfigFile(nil)
	}
	times := func(cfg *v1.ConfigFile) []time.Time {
		var ts []time.Time
		for _, h := range cfg.History {
			ts = append(ts, h.Created.Time.UTC())
		}
		return ts
	}
	check := func(t *testing.T, cfg *v1.ConfigFile, created time.Time, history []time.Time) {
		t.Helper()
		if !cfg.Created.Time.Equal(created) {
			t.Errorf("config created %v, want %v", cfg.Created.Time, created)
		}
		got := times(cfg)
		if len(got) != len(history) {
			t.Fatalf("history times %v, want %v", got, history)
		}
		for i := range got {
			if !got[i].Equal(history[i]) {
				t.Errorf("history[%d] (%s) created %v, want %v", i, cfg.History[i].CreatedBy, got[i], history[i])
			}
		}
	}
	t.Run("epoch", func(t *testing.T) {
		// The base's history keeps its times; what the build added is the epoch.
		check(t, dated(&epoch), epoch, []time.Time{baseOld, baseNew, epoch, epoch, epoch})
	})
	t.Run("no epoch", func(t *testing.T) {
		check(t, dated(nil), stepTime, []time.Time{baseOld, baseNew, baseNew, stepTime, stepTime})
	})
}

// applyAll runs the target stage of src through a Scope the way the engine
// does, starting from base, and returns the scope and the instructions it left
// to the engine (the filesystem ones).
func applyAll(t *testing.T, src string, buildArgs map[string]string, base v1.ConfigFile) (*Scope, []string) {
	t.Helper()
	p, err := planOf(src, Options{BuildArgs: buildArgs})
	if err != nil {
		t.Fatal(err)
	}
	s := &Scope{Image: base}
	s.Begin(false, nil)
	lex := shell.NewLex(p.Escape)
	var left []string
	for _, c := range p.Stages[p.Target].Commands {
		if err := s.Expand(c, lex); err != nil {
			t.Fatal(err)
		}
		ok, err := s.Apply(p, c, lex)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			left = append(left, strings.ToUpper(c.Name()))
		}
	}
	return s, left
}

func TestScopeApply(t *testing.T) {
	base := v1.ConfigFile{Config: v1.Config{Cmd: []string{"base-cmd"}, Env: []string{"PATH=/bin", "A=base"}, Shell: []string{"/bin/bash", "-c"}}}
	tests := []struct {
		name      string
		src       string
		buildArgs map[string]string
		check     func(t *testing.T, s *Scope, left []string)
	}{
		{"filesystem instructions are left to the engine", "FROM x\nWORKDIR /a\nRUN true\nCOPY a b\nADD c d\nENV E=1\n", nil,
			func(t *testing.T, s *Scope, left []string) {
				if !slices.Equal(left, []string{"WORKDIR", "RUN", "COPY", "ADD"}) {
					t.Errorf("left %q", left)
				}
				if n := len(s.Image.History); n != 1 {
					t.Errorf("%d history entries, want 1 (ENV)", n)
				}
			}},
		{"ENTRYPOINT drops the base's CMD", "FROM x\nENTRYPOINT [\"/e\"]\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				if s.Image.Config.Cmd != nil {
					t.Errorf("cmd %q, want none", s.Image.Config.Cmd)
				}
			}},
		{"ENTRYPOINT keeps a CMD of this stage", "FROM x\nCMD [\"c\"]\nENTRYPOINT [\"/e\"]\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				if !slices.Equal(s.Image.Config.Cmd, []string{"c"}) {
					t.Errorf("cmd %q", s.Image.Config.Cmd)
				}
			}},
		{"shell form uses the base's SHELL", "FROM x\nCMD echo hi\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				if want := []string{"/bin/bash", "-c", "echo hi"}; !slices.Equal(s.Image.Config.Cmd, want) {
					t.Errorf("cmd %q, want %q", s.Image.Config.Cmd, want)
				}
			}},
		{"an ARG set after ENV wins in RUN, not in the image", "FROM x\nENV A=env\nARG A=arg\nLABEL l=$A\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				env, _ := s.RunEnv(&Plan{})
				if m := EnvMap(env); m["A"] != "arg" {
					t.Errorf("RUN sees A=%q, want arg", m["A"])
				}
				if m := EnvMap(s.Image.Config.Env); m["A"] != "env" {
					t.Errorf("image has A=%q, want env", m["A"])
				}
				if v := s.Image.Config.Labels["l"]; v != "arg" {
					t.Errorf("label expanded to %q, want arg", v)
				}
			}},
		{"ENV after ARG wins", "FROM x\nARG A=arg\nENV A=env\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				env, _ := s.RunEnv(&Plan{})
				if m := EnvMap(env); m["A"] != "env" {
					t.Errorf("RUN sees A=%q, want env", m["A"])
				}
			}},
		{"a build arg beats the ARG default", "FROM x\nARG V=default\n", map[string]string{"V": "given"},
			func(t *testing.T, s *Scope, _ []string) {
				if s.Args["V"] != "given" {
					t.Errorf("V=%q", s.Args["V"])
				}
			}},
		{"proxy build args reach RUN, not its key", "FROM x\n", map[string]string{"HTTP_PROXY": "http://p"},
			func(t *testing.T, s *Scope, _ []string) {
				env, key := s.RunEnv(&Plan{BuildArgs: map[string]string{"HTTP_PROXY": "http://p"}})
				if EnvMap(env)["HTTP_PROXY"] != "http://p" {
					t.Errorf("RUN env %q has no proxy", env)
				}
				if _, ok := EnvMap(key)["HTTP_PROXY"]; ok {
					t.Errorf("key env %q has the proxy", key)
				}
			}},
		{"EXPOSE defaults to tcp", "FROM x\nEXPOSE 80 53/udp\n", nil,
			func(t *testing.T, s *Scope, _ []string) {
				want := map[string]struct{}{"80/tcp": {}, "53/udp": {}}
				if !maps.Equal(s.Image.Config.ExposedPorts, want) {
					t.Errorf("ports %v", s.Image.Config.ExposedPorts)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, left := applyAll(t, tt.src, tt.buildArgs, *base.DeepCopy())
			tt.check(t, s, left)
		})
	}
}

// TestScopeCloneIsIndependent: a stage built FROM another must not change it.
func TestScopeCloneIsIndependent(t *testing.T) {
	s, _ := applyAll(t, "FROM x\nARG A=1\nENV E=1\nLABEL l=1\n", nil, v1.ConfigFile{})
	c := s.Clone()
	c.Begin(true, nil)
	c.Args["A"] = "2"
	c.Image.Config.Env[0] = "E=2"
	c.Image.Config.Labels["l"] = "2"
	if s.Args["A"] != "1" || s.Image.Config.Env[0] != "E=1" || s.Image.Config.Labels["l"] != "1" {
		t.Errorf("the clone changed its original: args %v env %q labels %v", s.Args, s.Image.Config.Env, s.Image.Config.Labels)
	}
	if c.Args["A"] != "2" {
		t.Error("Begin(keepArgs) dropped the ARGs")
	}
}
