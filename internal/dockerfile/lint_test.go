package dockerfile

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		opts Options
		want []string // "line Rule", "line notice" for a directive notice
	}{
		{name: "clean file", src: "FROM busybox AS base\nCMD [\"sh\"]\n"},
		{name: "stage name casing", src: "FROM busybox AS Base\n", want: []string{"1 StageNameCasing"}},
		{name: "from as casing", src: "FROM busybox as base\n", want: []string{"1 FromAsCasing"}},
		{name: "json args for cmd and entrypoint", src: "FROM busybox\nENTRYPOINT echo hi\nCMD echo hi\n",
			want: []string{"2 JSONArgsRecommended", "3 JSONArgsRecommended"}},
		{name: "shell form after SHELL is fine", src: "FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nCMD echo hi\n"},
		{name: "SHELL of the parent stage counts", src: "FROM busybox AS a\nSHELL [\"/bin/sh\", \"-c\"]\nFROM a\nCMD echo hi\n"},
		{name: "undefined arg in from", src: "ARG VERSION=1\nFROM busybox${VERSON}\n", want: []string{"2 UndefinedArgInFrom"}},
		{name: "platform args are defined", src: "FROM --platform=$BUILDPLATFORM busybox\n"},
		{name: "redundant target platform", src: "FROM --platform=$TARGETPLATFORM busybox\n", want: []string{"1 RedundantTargetPlatform"}},
		{name: "const platform", src: "FROM --platform=linux/amd64 busybox\n", want: []string{"1 FromPlatformFlagConstDisallowed"}},
		{name: "const platform named for it", src: "FROM --platform=linux/amd64 busybox AS build-amd64\n"},
		{name: "invalid default arg in from", src: "ARG TAG\nFROM busybox:${TAG}\n", want: []string{"2 InvalidDefaultArgInFrom"}},
		{name: "maintainer", src: "FROM busybox\nMAINTAINER me\n", want: []string{"2 MaintainerDeprecated"}},
		{name: "legacy key value", src: "FROM busybox\nENV A b\nLABEL x y\n", want: []string{"2 LegacyKeyValueFormat", "3 LegacyKeyValueFormat"}},
		{name: "secrets in arg and env", src: "FROM busybox\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x PUBLIC_KEY=y\n",
			want: []string{"2 SecretsUsedInArgOrEnv", "3 SecretsUsedInArgOrEnv"}},
		{name: "multiple cmd", src: "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n", want: []string{"2 MultipleInstructionsDisallowed"}},
		{name: "instruction casing", src: "FROM busybox\nRUN true\nRUN true\nrun true\nWorkdir /x\n",
			want: []string{"4 ConsistentInstructionCasing", "5 ConsistentInstructionCasing"}},
		{name: "reserved stage name", src: "FROM busybox AS context\n", want: []string{"1 ReservedStageName"}},
		{name: "expose", src: "FROM busybox\nEXPOSE 127.0.0.1:8080:80 80/TCP\n", want: []string{"2 ExposeInvalidFormat", "2 ExposeProtoCasing"}},
		{name: "empty continuation", src: "FROM busybox\nRUN echo a && \\\n\n  echo b\n", want: []string{"4 NoEmptyContinuation"}},
		{name: "skip some", src: "# check=skip=FromAsCasing,JSONArgsRecommended\nFROM busybox as base\nCMD echo hi\nMAINTAINER me\n",
			want: []string{"4 MaintainerDeprecated"}},
		{name: "skip all", src: "# check=skip=all\nFROM busybox as Base\nCMD echo hi\n"},
		{name: "unneeded stage not checked in a build", src: "FROM busybox AS other\nCMD echo a\nFROM busybox\n"},
		{name: "every stage checked with AllStages", src: "FROM busybox AS other\nCMD echo a\nFROM busybox\n",
			opts: Options{AllStages: true}, want: []string{"2 JSONArgsRecommended"}},
		{name: "builtin syntax is silent", src: "# syntax=docker/dockerfile:1.7\nFROM busybox\n"},
		{name: "builtin syntax with registry and digest", src: "# syntax=docker.io/docker/dockerfile:1@sha256:" + strings.Repeat("a", 64) + "\nFROM busybox\n"},
		{name: "foreign syntax gets a notice", src: "# syntax=example.com/my/frontend:2\nFROM busybox\n", want: []string{"1 notice"}},
		{name: "labs is the same frontend", src: "# syntax=docker/dockerfile:1-labs\nFROM busybox\n"},
		{name: "upstream frontend is another one", src: "# syntax=docker/dockerfile-upstream:master\nFROM busybox\n", want: []string{"1 notice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planOf(tc.src, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range p.Warnings {
				rule := w.Rule
				if rule == "" {
					rule = "notice"
				}
				got = append(got, strings.Join([]string{strconv.Itoa(w.Line), rule}, " "))
				if w.File != "Dockerfile" || !strings.HasPrefix(w.String(), "Dockerfile:") {
					t.Errorf("warning %q does not name the file and line", w.String())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if err := p.LintError(); err != nil {
				t.Errorf("LintError without check=error=true: %v", err)
			}
		})
	}
}

func TestCheckErrorDirective(t *testing.T) {
	p, err := planOf("# check=error=true\nFROM busybox as base\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.LintError()
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "FromAsCasing") || !strings.HasPrefix(err.Error(), "Dockerfile:") {
		t.Fatalf("LintError = %v, want the failed rule named", err)
	}
	p, err = planOf("# check=error=true\nFROM busybox AS base\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LintError(); err != nil {
		t.Fatalf("LintError on a clean file = %v", err)
	}
	if _, err := planOf("# check=bogus=1\nFROM busybox\n", Options{}); err == nil || !strings.Contains(err.Error(), "Dockerfile:1") {
		t.Fatalf("bad # check= directive: err = %v, want an error at Dockerfile:1", err)
	}
}
