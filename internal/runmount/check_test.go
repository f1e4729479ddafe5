package runmount

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func parseRunMounts(t *testing.T, line string) []*instructions.Mount {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		t.Fatalf("BuildKit rejects %q: %v", line, err)
	}
	run := cmd.(*instructions.RunCommand)
	if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		t.Fatal(err)
	}
	return instructions.GetMounts(run)
}

func TestCheckMount(t *testing.T) {
	tests := []struct {
		mount string
		bad   string // the option named in the error; "" when accepted
	}{
		{"type=secret,id=tok", ""},
		{"type=secret,id=tok,env=TOKEN", ""},
		{"type=secret,id=tok,uid=1000,gid=1000,mode=0440", ""},
		{"type=secret,source=tok,target=/t", ""},
		{"type=secret,id=tok,rw", "rw"},
		{"type=cache,target=/c", ""},
		{"type=cache,target=/c,id=x,sharing=locked,uid=1,gid=2,mode=0700", ""},
		{"type=cache,target=/c,sharing=private", ""},
		{"type=cache,target=/c,from=base", ""},
		{"type=cache,target=/c,from=base,source=/x", ""},
		{"type=cache,target=/c,source=/x", "source"},
		{"type=cache,target=/c,env=X", "env"},
		{"type=bind,target=/b", ""},
		{"type=bind,target=/b,from=base,source=/x,rw", ""},
		{"type=bind,target=/b,id=x", "id"},
		{"type=bind,target=/b,env=X", "env"},
		{"type=tmpfs,target=/t,size=1m", ""},
		{"type=tmpfs,target=/t,ro", ""},
		{"type=tmpfs,target=/t,id=x", "id"},
		{"type=tmpfs,target=/t,source=/x", "source"},
		{"type=tmpfs,target=/t,from=base", "from"},
		{"type=ssh", ""},
		{"type=ssh,id=k,target=/s,required,uid=1,gid=2,mode=0600", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mount, func(t *testing.T) {
			ms := parseRunMounts(t, "RUN --mount="+tt.mount+" true")
			err := Check(ms[0])
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tt.bad != "" && err == nil:
				t.Errorf("accepted, want an error naming %q", tt.bad)
			case tt.bad != "" && !strings.Contains(err.Error(), tt.bad):
				t.Errorf("error %q does not name %q", err, tt.bad)
			}
		})
	}
}
