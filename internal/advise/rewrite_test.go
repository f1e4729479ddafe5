package advise

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/slimbuild/slimbuild/internal/dockerfile"
)

var helloNodes = []Node{
	{Path: "/usr", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/lib", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/lib/x86_64-linux-gnu", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Type: tar.TypeReg, Mode: 0o755},
	{Path: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Type: tar.TypeReg, Mode: 0o755},
	{Path: "/lib64", Type: tar.TypeSymlink, Mode: 0o777, Link: "usr/lib64"},
	{Path: "/usr/lib64", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/lib64/ld-linux-x86-64.so.2", Type: tar.TypeSymlink, Mode: 0o777, Link: "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
	{Path: "/usr/local", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/local/bin", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/usr/local/bin/hello", Type: tar.TypeReg, Mode: 0o755},
	{Path: "/tmp", Type: tar.TypeDir, Mode: 0o1777},
	{Path: "/home", Type: tar.TypeDir, Mode: 0o755},
	{Path: "/home/app", Type: tar.TypeDir, Mode: 0o750, UID: 1000, GID: 1000},
	{Path: "/home/app/it's", Type: tar.TypeReg, Mode: 0o640, UID: 1000, GID: 1000},
	{Path: "/src", Type: tar.TypeDir, Mode: 0o755},
}

var helloConfig = v1.Config{
	Env:          []string{"PATH=/usr/local/bin:/usr/bin", "TRICKY=a \"b\" $HOME \\n ${X:-y}`"},
	Cmd:          []string{"/usr/local/bin/hello", "it's <ok>"},
	WorkingDir:   "/src",
	User:         "app",
	Labels:       map[string]string{"org.example.z": "last", "a b": "$x"},
	ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
	StopSignal:   "SIGTERM",
	Healthcheck:  &v1.HealthConfig{Test: []string{"CMD", "/usr/local/bin/hello", "--ping"}, Interval: 30 * time.Second, Retries: 3},
}

const naive = `# syntax=docker/dockerfile:1
ARG BASE=slimbuild/builder:bookworm
# One stage.
FROM $BASE
WORKDIR /src
COPY hello.c .
RUN gcc -O2 -o /usr/local/bin/hello hello.c
CMD ["/usr/local/bin/hello"]
`

// lastStage parses df with the project's planner and returns its last stage's commands.
func lastStage(t *testing.T, df []byte) (*dockerfile.Plan, []instructions.Command) {
	t.Helper()
	parsed, err := dockerfile.Parse("Dockerfile", bytes.NewReader(df))
	if err != nil {
		t.Fatalf("advised Dockerfile does not parse: %v\n%s", err, df)
	}
	p, err := parsed.Plan(dockerfile.Options{})
	if err != nil {
		t.Fatalf("advised Dockerfile does not parse: %v\n%s", err, df)
	}
	return p, p.Stages[len(p.Stages)-1].Commands
}

// TestRewriteRoundTrip builds the runtime config back from the advised
// Dockerfile, expanding words as the engine does, and compares it with the
// original: quoting must survive $, quotes, backslashes and the escape token.
func TestRewriteRoundTrip(t *testing.T) {
	for _, esc := range []string{"", "# escape=`\n"} {
		t.Run("escape="+esc, func(t *testing.T) {
			src := esc + naive
			r, err := Rewrite("Dockerfile", []byte(src), helloNodes, RewriteOptions{Config: helloConfig})
			if err != nil {
				t.Fatal(err)
			}
			df := r.Bytes()
			if esc != "" && !strings.HasPrefix(string(df), esc) {
				t.Fatalf("parser directive no longer first:\n%s", df)
			}
			p, cmds := lastStage(t, df)
			lex := shell.NewLex(p.Escape)
			word := func(s string) string {
				w, _, err := lex.ProcessWord(s, dockerfile.MapEnv{})
				if err != nil {
					t.Fatalf("expanding %q: %v", s, err)
				}
				return w
			}
			var got v1.Config
			got.Labels = map[string]string{}
			got.ExposedPorts = map[string]struct{}{}
			for _, c := range cmds {
				switch c := c.(type) {
				case *instructions.EnvCommand:
					for _, kv := range c.Env {
						got.Env = append(got.Env, kv.Key+"="+word(kv.Value))
					}
				case *instructions.LabelCommand:
					for _, kv := range c.Labels {
						got.Labels[word(kv.Key)] = word(kv.Value)
					}
				case *instructions.ExposeCommand:
					for _, p := range c.Ports {
						got.ExposedPorts[p] = struct{}{}
					}
				case *instructions.WorkdirCommand:
					got.WorkingDir = word(c.Path)
				case *instructions.UserCommand:
					got.User = word(c.User)
				case *instructions.StopSignalCommand:
					got.StopSignal = word(c.Signal)
				case *instructions.CmdCommand:
					got.Cmd = c.CmdLine
				case *instructions.HealthCheckCommand:
					got.Healthcheck = &v1.HealthConfig{Test: c.Health.Test, Interval: c.Health.Interval, Retries: c.Health.Retries}
				}
			}
			if d := cmp.Diff(helloConfig, got); d != "" {
				t.Errorf("config after the round trip (-want +got):\n%s\n%s", d, df)
			}
			if p.Stages[0].Name != "build" || p.Stages[0].Base != "slimbuild/builder:bookworm" {
				t.Errorf("builder stage = %q from %q, want build from the global ARG's value", p.Stages[0].Name, p.Stages[0].Base)
			}
		})
	}
}

// TestRewriteCopies checks what the runtime stage copies: files grouped by
// directory from the builder, links and odd directories from the skeleton,
// nothing by a name COPY would read as a pattern.
func TestRewriteCopies(t *testing.T) {
	nodes := append(append([]Node{}, helloNodes...), Node{Path: "/etc/a*b", Type: tar.TypeReg, Mode: 0o644})
	r, err := Rewrite("Dockerfile", []byte(naive), nodes, RewriteOptions{Config: helloConfig})
	if err != nil {
		t.Fatal(err)
	}
	df := string(r.Bytes())
	want := []string{
		`COPY --from=slimbuild-skeleton ["/.slimbuild-skeleton/","/"]`,
		`COPY --from=build ["/home/app/it's","/home/app/"]`,
		`COPY --from=build ["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2","/usr/lib/x86_64-linux-gnu/libc.so.6","/usr/lib/x86_64-linux-gnu/"]`,
		`COPY --from=build ["/usr/local/bin/hello","/usr/local/bin/"]`,
		`FROM build AS slimbuild-skeleton`,
		`chmod 1777 './tmp'`,
		`chown 1000:1000 './home/app'`,
		`chmod 0750 './home/app'`,
		`ln -s -- 'usr/lib64' './lib64'`,
		`ln -s -- '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' './usr/lib64/ld-linux-x86-64.so.2'`,
		`mkdir -p './src'`, // empty: COPY would not make it
		"# NOTE: \"/etc/a*b\" is left out",
	}
	for _, w := range want {
		if !strings.Contains(df, w) {
			t.Errorf("advised Dockerfile lacks %s:\n%s", w, df)
		}
	}
	for _, no := range []string{`"/lib64"`, `ld-linux-x86-64.so.2","/usr/lib64/"`, `mkdir -p './usr/lib/x86_64-linux-gnu'`, `"/etc/a*b"]`} {
		if strings.Contains(df, no) {
			t.Errorf("advised Dockerfile has %s:\n%s", no, df)
		}
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "a*b") {
		t.Errorf("notes %q do not name the left-out path", r.Notes)
	}
}

// TestRewriteDeterministic: the same input gives the same bytes, whatever
// the order of the nodes and of the config's maps.
func TestRewriteDeterministic(t *testing.T) {
	a, err := Rewrite("Dockerfile", []byte(naive), helloNodes, RewriteOptions{Config: helloConfig})
	if err != nil {
		t.Fatal(err)
	}
	rev := make([]Node, len(helloNodes))
	for i, n := range helloNodes {
		rev[len(helloNodes)-1-i] = n
	}
	for i := 0; i < 20; i++ {
		b, err := Rewrite("Dockerfile", []byte(naive), rev, RewriteOptions{Config: helloConfig})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("two rewrites differ:\n%s\n---\n%s", a.Bytes(), b.Bytes())
		}
	}
}

func TestRewriteStageNames(t *testing.T) {
	for _, tc := range []struct {
		name, src, builder, from string
	}{
		{"named stage keeps its name", "FROM alpine AS App\nRUN true\n", "app", "FROM alpine AS App\n"},
		{"build taken by an earlier stage", "FROM alpine AS build\nRUN true\nFROM build\nCMD [\"x\"]\n", "build-1", "FROM build AS build-1\n"},
		{"continued FROM line", "FROM \\\n  alpine\r\nCMD [\"x\"]\r\n", "build", "  alpine AS build\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Rewrite("Dockerfile", []byte(tc.src), nil, RewriteOptions{Config: v1.Config{Cmd: []string{"x"}}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Builder != tc.builder {
				t.Errorf("builder = %q, want %q", r.Builder, tc.builder)
			}
			df := r.Bytes()
			if !strings.Contains(string(df), tc.from) {
				t.Errorf("no %q in\n%s", tc.from, df)
			}
			lastStage(t, df)
		})
	}
	if _, err := Rewrite("Dockerfile", []byte("RUN true\n"), nil, RewriteOptions{}); err == nil {
		t.Error("a Dockerfile without FROM was rewritten")
	}
}
