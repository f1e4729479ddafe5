package dockerfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// oneCommand parses src, a single instruction.
func oneCommand(t *testing.T, src string) instructions.Command {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AST.Children) != 1 {
		t.Fatalf("%q: %d instructions, want 1", src, len(res.AST.Children))
	}
	c, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunArgs(t *testing.T) {
	shell := []string{"/bin/bash", "-ec"}
	for _, tc := range []struct {
		name       string
		src        string
		want       []string
		wantScript string // the script's data; "" for none
	}{
		{"exec form ignores the shell", `RUN ["echo", "a b"]`, []string{"echo", "a b"}, ""},
		{"shell form", `RUN echo a  b`, []string{"/bin/bash", "-ec", "echo a  b"}, ""},
		{"heredoc is the whole command", "RUN <<EOT\necho hi\nEOT\n", []string{"/bin/bash", "-ec", "echo hi\n"}, ""},
		{"heredoc with a shebang is a script", "RUN <<EOT\n#!/usr/bin/env python3\nprint(1)\nEOT\n", []string{"/dev/pipes/EOT"}, "#!/usr/bin/env python3\nprint(1)\n"},
		{"quoted marker", "RUN <<\"EOT\"\necho $HOME\nEOT\n", []string{"/bin/bash", "-ec", "echo $HOME\n"}, ""},
		{"chomped heredoc", "RUN <<-EOT\n\techo tab\nEOT\n", []string{"/bin/bash", "-ec", "echo tab\n"}, ""},
		{"heredoc fed to a command: the shell reads it", "RUN cat <<EOT > /f\nline\nEOT\n", []string{"/bin/bash", "-ec", "cat <<EOT > /f\nline\nEOT\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := oneCommand(t, tc.src).(*instructions.RunCommand)
			if !ok {
				t.Fatalf("%q is not a RUN", tc.src)
			}
			args, script := RunArgs(c, shell)
			if diff := cmp.Diff(tc.want, args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			got := ""
			if script != nil {
				got = script.Data
			}
			if got != tc.wantScript {
				t.Errorf("script %q, want %q", got, tc.wantScript)
			}
		})
	}
}

func TestParseTriggers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		triggers []string
		want     []string // the commands' names
		wantErr  string
	}{
		{"run and copy", []string{"RUN make", "COPY . /src"}, []string{"RUN", "COPY"}, ""},
		// BuildKit's instruction parser refuses FROM before the check does.
		{"FROM is refused", []string{"FROM busybox"}, nil, "not a command"},
		{"ONBUILD is refused", []string{"ONBUILD RUN true"}, nil, "ONBUILD isn't allowed"},
		{"MAINTAINER is refused", []string{"RUN true", "MAINTAINER me"}, nil, "MAINTAINER isn't allowed"},
		{"a trigger that does not parse", []string{"COPY --nope a b"}, nil, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := ParseTriggers(tc.triggers)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range cmds {
				names = append(names, c.Name())
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommandText(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"COPY --chmod=644 a /b", "COPY --chmod=644 a /b"},
		{"ENV A=1", "ENV A=1"},
		{"RUN echo hi", "RUN echo hi"},
	} {
		if got := CommandText(oneCommand(t, tc.src)); got != tc.want {
			t.Errorf("CommandText(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}
