package dockerfile

import (
	"errors"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanStages(t *testing.T) {
	for _, tc := range []struct {
		name       string
		src        string
		opts       Options
		wantNeeded []int
		wantBases  []string
		wantDeps   [][]int
	}{
		{
			name:       "single stage",
			src:        "FROM busybox\nRUN true\n",
			wantNeeded: []int{0},
			wantBases:  []string{"busybox"},
			wantDeps:   [][]int{nil},
		},
		{
			name: "multistage prunes unused stage",
			src: `FROM gcc AS compile
RUN make
FROM alpine AS unused
RUN true
FROM busybox
COPY --from=compile /out /out
`,
			wantNeeded: []int{0, 2},
			wantBases:  []string{"gcc", "alpine", "busybox"},
			wantDeps:   [][]int{nil, nil, {0}},
		},
		{
			name: "target selects an earlier stage",
			src: `FROM busybox AS a
FROM a AS b
FROM busybox AS c
`,
			opts:       Options{Target: "B"},
			wantNeeded: []int{0, 1},
			wantBases:  []string{"busybox", "", "busybox"},
			wantDeps:   [][]int{nil, {0}, nil},
		},
		{
			name: "global ARG in FROM with build-arg override",
			src: `ARG BASE=busybox
ARG TAG=1
FROM ${BASE}:${TAG}
`,
			opts:       Options{BuildArgs: map[string]string{"TAG": "2"}},
			wantNeeded: []int{0},
			wantBases:  []string{"busybox:2"},
			wantDeps:   [][]int{nil},
		},
		{
			name: "copy from index and image, mount from stage",
			src: `FROM busybox
FROM busybox AS two
FROM scratch
COPY --from=0 /a /a
COPY --from=alpine:3 /b /b
RUN --mount=type=bind,from=two,target=/x true
`,
			wantNeeded: []int{0, 1, 2},
			wantBases:  []string{"busybox", "busybox", ""},
			wantDeps:   [][]int{nil, nil, {0, 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planOf(tc.src, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantNeeded, p.Needed); diff != "" {
				t.Errorf("needed (-want +got):\n%s", diff)
			}
			var bases []string
			var deps [][]int
			for _, s := range p.Stages {
				bases = append(bases, s.Base)
				deps = append(deps, s.Deps)
			}
			if diff := cmp.Diff(tc.wantBases, bases); diff != "" {
				t.Errorf("bases (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDeps, deps); diff != "" {
				t.Errorf("deps (-want +got):\n%s", diff)
			}
		})
	}
}

// planOf parses src and plans it with opts, the two steps every caller takes.
func planOf(src string, opts Options) (*Plan, error) {
	f, err := Parse("Dockerfile", strings.NewReader(src))
	if err != nil {
		return nil, err
	}
	return f.Plan(opts)
}

func TestPlanScratch(t *testing.T) {
	p, err := planOf("FROM scratch\nCOPY --from=busybox:1 /bin/busybox /\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stages[0]
	if !s.Scratch || s.Base != "" || s.BaseStage != -1 || len(s.Deps) != 0 {
		t.Errorf("scratch stage = %+v", s)
	}
}

// TestParseThenPlan: the parsed File is planned again with other options,
// and each plan is its own: build args and targets do not leak from one to
// the next, and parse-time warnings are in each plan once.
func TestParseThenPlan(t *testing.T) {
	src := "ARG BASE=busybox\nFROM ${BASE} AS a\nFROM a as b\nFROM scratch AS c\nCOPY --from=b /x /x\n"
	f, err := Parse("Dockerfile", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		opts       Options
		wantBase   string
		wantNeeded []int
	}{
		{"defaults", Options{}, "busybox", []int{0, 1, 2}},
		{"build arg", Options{BuildArgs: map[string]string{"BASE": "alpine:3"}}, "alpine:3", []int{0, 1, 2}},
		{"target", Options{Target: "a"}, "busybox", []int{0}},
		{"defaults again", Options{}, "busybox", []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.Plan(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Stages[0].Base != tc.wantBase {
				t.Errorf("base %q, want %q", p.Stages[0].Base, tc.wantBase)
			}
			if diff := cmp.Diff(tc.wantNeeded, p.Needed); diff != "" {
				t.Errorf("needed (-want +got):\n%s", diff)
			}
			casing := 0
			for _, w := range p.Warnings {
				if w.Rule == "FromAsCasing" {
					casing++
				}
			}
			if casing != 1 {
				t.Errorf("FromAsCasing reported %d times, want once: %v", casing, p.Warnings)
			}
		})
	}
	if f.MetaArgs[0].Args[0].Value == nil || *f.MetaArgs[0].Args[0].Value != "busybox" {
		t.Errorf("planning changed the parsed global ARG: %+v", f.MetaArgs[0].Args[0])
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		opts      Options
		want      string // substring, including file:line
		is        error
	}{
		{name: "syntax", src: "FROM busybox\nRUN true\nCOPY\n", want: "Dockerfile:3:"},
		{name: "unknown instruction", src: "FROM busybox\nFROBNICATE x\n", want: "Dockerfile:2:"},
		{name: "empty file", src: "# nothing\n", want: "Dockerfile:1: file with no instructions"},
		{name: "only ARG", src: "ARG X=1\n", want: "no FROM"},
		{name: "instruction before FROM", src: "RUN true\nFROM busybox\n", want: "Dockerfile:1:"},
		{name: "unknown target", src: "FROM busybox AS a\n", opts: Options{Target: "nope"}, want: `unknown target stage "nope"`, is: ErrUnknownTarget},
		{name: "copy from itself", src: "FROM busybox AS a\nCOPY --from=a /x /y\n", want: "Dockerfile:2: stage \"a\" cannot copy from itself"},
		{name: "copy from later index", src: "FROM busybox\nCOPY --from=1 /x /y\nFROM busybox\n", want: "Dockerfile:2: --from=1"},
		{name: "duplicate name", src: "FROM busybox AS a\nFROM busybox AS a\n", want: "Dockerfile:2: duplicate stage name"},
		{name: "empty base", src: "ARG B\nFROM $B\n", want: "Dockerfile:2: FROM \"$B\" expands to an empty name"},
		{name: "bad platform", src: "FROM busybox\nFROM --platform=linux/no/such/thing busybox\n", want: "Dockerfile:2: FROM --platform"},
		{name: "foreign platform from arg", src: "ARG P=windows/arm\nFROM --platform=$P busybox AS a\nFROM a\n", want: "Dockerfile:2: FROM --platform=windows/arm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := planOf(tc.src, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestPlanHostPlatform: the host's platform, also as $BUILDPLATFORM and
// $TARGETPLATFORM, is honoured; a foreign stage the target does not need is no error.
func TestPlanHostPlatform(t *testing.T) {
	for _, src := range []string{
		"FROM --platform=$BUILDPLATFORM busybox\n",
		"FROM --platform=$TARGETPLATFORM busybox\n",
		"FROM --platform=" + PlatformArgs()["TARGETPLATFORM"] + " busybox\n",
		"FROM --platform=linux/s390x busybox AS unused\nFROM busybox\n",
	} {
		if _, err := planOf(src, Options{}); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN echo hi\n",
		"ARG X=1\nFROM a:$X AS b\nFROM b\nCOPY --from=b /x /y\n",
		"FROM scratch\nCOPY <<EOF /x\nhello\nEOF\n",
		"# escape=`\nFROM busybox\nRUN echo `\n  hi\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := planOf(src, Options{})
		if err != nil {
			return
		}
		if len(p.Needed) == 0 || p.Needed[len(p.Needed)-1] != p.Target {
			t.Fatalf("needed %v does not end with target %d", p.Needed, p.Target)
		}
	})
}

// TestPlanPlatforms: the automatic platform ARGs follow the target platform,
// BUILDPLATFORM stays the host's, and each stage is on its FROM --platform, its
// parent stage's, or the target's.
func TestPlanPlatforms(t *testing.T) {
	src := "ARG IMG=busybox\nFROM --platform=$BUILDPLATFORM $IMG AS native\nFROM native AS child\nFROM busybox AS target\nFROM --platform=linux/arm/v7 busybox AS arm\n"
	target := ocispecs.Platform{OS: "linux", Architecture: "s390x"}
	f, err := Parse("Dockerfile", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Plan(Options{Platform: target, Target: "target"})
	if err != nil {
		t.Fatal(err)
	}
	host := HostPlatform()
	args := p.GlobalArgs()
	for k, want := range map[string]string{
		"TARGETPLATFORM": "linux/s390x", "TARGETOS": "linux", "TARGETARCH": "s390x", "TARGETVARIANT": "",
		"BUILDPLATFORM": host.OS + "/" + host.Architecture, "BUILDARCH": host.Architecture,
	} {
		if args[k] != want {
			t.Errorf("%s = %q, want %q", k, args[k], want)
		}
	}
	for i, want := range []ocispecs.Platform{host, host, target, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
		if got := p.Stages[i].On; FormatPlatform(got) != FormatPlatform(want) {
			t.Errorf("stage %s is on %s, want %s", p.Stages[i].ID(), FormatPlatform(got), FormatPlatform(want))
		}
	}
	if _, err := planOf("FROM --platform=windows/amd64 busybox\n", Options{}); err == nil || !strings.Contains(err.Error(), "Dockerfile:1") {
		t.Errorf("FROM --platform=windows/amd64: error %v, want one at Dockerfile:1", err)
	}
}

func TestUnusedBuildArgs(t *testing.T) {
	src := "ARG GLOBAL\nFROM scratch\nARG LOCAL\n"
	for _, tc := range []struct {
		name      string
		buildArgs map[string]string
		consumed  map[string]bool
		want      []string
	}{
		{name: "none given", want: nil},
		{name: "global, predefined and consumed are used",
			buildArgs: map[string]string{"GLOBAL": "1", "HTTP_PROXY": "p", "no_proxy": "x", "SOURCE_DATE_EPOCH": "0", "LOCAL": "2"},
			consumed:  map[string]bool{"LOCAL": true}, want: nil},
		{name: "declared by a stage not built", buildArgs: map[string]string{"LOCAL": "2"}, want: []string{"LOCAL"}},
		{name: "sorted", buildArgs: map[string]string{"ZED": "", "ALPHA": "", "GLOBAL": ""}, want: []string{"ALPHA", "ZED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("Dockerfile", strings.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.Plan(Options{BuildArgs: tc.buildArgs})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.UnusedBuildArgs(tc.consumed)); diff != "" {
				t.Errorf("unused (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseTooLarge: a Dockerfile longer than MaxSize is refused, naming it,
// and no more than MaxSize+1 bytes are read of it.
func TestParseTooLarge(t *testing.T) {
	r := &countingReader{r: strings.NewReader("FROM scratch\n" + strings.Repeat("# x\n", MaxSize/4+1))}
	_, err := Parse("big/Dockerfile", r)
	if err == nil || !strings.Contains(err.Error(), "big/Dockerfile") || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want the file refused by name", err)
	}
	if r.n > MaxSize+1 {
		t.Errorf("read %d bytes, more than MaxSize+1", r.n)
	}
	if _, err := Parse("ok", strings.NewReader("FROM scratch\n"+strings.Repeat("#\n", 1000))); err != nil {
		t.Fatal(err)
	}
}

type countingReader struct {
	r *strings.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
