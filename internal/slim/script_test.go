package slim

import (
	"slices"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"mvdan.cc/sh/v3/syntax"
)

// scriptFixture adds to the ELF fixture a family of programs that only a
// shell script's text names.
func scriptFixture(t *testing.T) *fixture {
	f := newFixture(t)
	exe := func(p string) { slimtest.WriteFile(t, f.root, p, "\x7fELF not really\n", 0o755) }
	for _, p := range []string{"/usr/bin/helper2", "/usr/bin/libcmd", "/usr/bin/notcalled", "/usr/bin/myfn",
		"/usr/bin/wrapped", "/usr/bin/subcmd", "/usr/bin/python3", "/usr/bin/dynamic", "/usr/bin/cat", "/usr/bin/env"} {
		exe(p)
	}
	slimtest.WriteFile(t, f.root, "/usr/local/bin/tool", "#!/bin/sh\nhelper2 --flag\n", 0o755)
	slimtest.WriteFile(t, f.root, "/opt/lib.sh", "libcmd\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/app.conf", "key=value\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/app2.conf", "key=value\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/unused.conf", "key=value\n", 0o644)
	slimtest.WriteFile(t, f.root, "/srv/app.py", "print('hi')\n", 0o644)
	slimtest.WriteFile(t, f.root, "/app/run.sh", `#!/bin/sh
set -e
. /opt/lib.sh
myfn() { echo in function; }
myfn
CMD=dynamic
$CMD
x=$(subcmd)
while read -r line; do tool "$line"; done < /etc/app.conf
cat "/etc/app2.conf" '/etc/nothere'
exec env FOO=1 wrapped "$DIR/x"
`, 0o755)
	slimtest.WriteFile(t, f.root, "/app/run2.sh", "/app/hello\n", 0o644)
	slimtest.WriteFile(t, f.root, "/app/broken.sh", "#!/bin/sh\nif then fi (\n", 0o755)
	return f
}

func TestClosureShellScript(t *testing.T) {
	f := scriptFixture(t)
	tests := []struct {
		name     string
		cfg      v1.Config
		want     map[string]string // path -> "Why By"
		dropped  []string
		wantNote string
	}{
		{
			name: "shebang script",
			cfg:  v1.Config{Entrypoint: []string{"/app/run.sh"}},
			want: map[string]string{
				"/opt/lib.sh":         WhyScriptPath + " /app/run.sh",
				"/usr/bin/libcmd":     WhyScriptCommand + " /opt/lib.sh",
				"/usr/bin/subcmd":     WhyScriptCommand + " /app/run.sh",
				"/usr/local/bin/tool": WhyScriptCommand + " /app/run.sh",
				"/usr/bin/helper2":    WhyScriptCommand + " /usr/local/bin/tool",
				"/usr/bin/env":        "",
				"/usr/bin/wrapped":    WhyScriptCommand + " /app/run.sh",
				"/usr/bin/cat":        WhyScriptCommand + " /app/run.sh",
				"/etc/app.conf":       WhyScriptPath + " /app/run.sh",
				"/etc/app2.conf":      WhyScriptPath + " /app/run.sh",
			},
			dropped: []string{"/usr/bin/notcalled", "/usr/bin/myfn", "/usr/bin/dynamic", "/etc/unused.conf", "/app/hello"},
		},
		{
			name: "sh -c",
			cfg:  v1.Config{Entrypoint: []string{"sh", "-c"}, Cmd: []string{"hello && cat /etc/app2.conf"}, Env: []string{"PATH=/app:/bin"}},
			want: map[string]string{
				"/app/hello":     WhyScriptCommand + " /bin/sh",
				"/etc/app2.conf": WhyScriptPath + " /bin/sh",
				"/usr/bin/cat":   WhyScriptCommand + " /bin/sh",
			},
			dropped: []string{"/etc/app.conf", "/usr/bin/libcmd"},
		},
		{
			name:    "sh with a script operand",
			cfg:     v1.Config{Cmd: []string{"/bin/sh", "-e", "/app/run2.sh"}},
			want:    map[string]string{"/app/run2.sh": WhyArgument + " /bin/sh", "/app/hello": WhyScriptCommand + " /app/run2.sh"},
			dropped: []string{"/usr/bin/cat"},
		},
		{
			name:    "interpreter with a file argument",
			cfg:     v1.Config{WorkingDir: "/srv", Cmd: []string{"python3", "app.py", "--port", "80"}},
			want:    map[string]string{"/srv/app.py": WhyArgument + " /usr/bin/python3"},
			dropped: []string{"/usr/bin/cat"},
		},
		{
			name:     "unparsable script is noted",
			cfg:      v1.Config{Cmd: []string{"/app/broken.sh"}},
			want:     map[string]string{"/app/broken.sh": WhyEntrypoint},
			wantNote: "cannot parse shell script /app/broken.sh",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Closure(f.root, tc.cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range res.Entries {
				got[e.Path] = strings.TrimSpace(e.Why + " " + e.By)
			}
			for p, why := range tc.want {
				g, ok := got[p]
				if !ok {
					t.Errorf("%s not kept; closure: %v", p, res.Paths())
					continue
				}
				if why != "" && g != why {
					t.Errorf("%s kept for %q, want %q", p, g, why)
				}
			}
			for _, p := range tc.dropped {
				if _, ok := got[p]; ok {
					t.Errorf("%s kept (%s), though the script does not reach it", p, got[p])
				}
			}
			if tc.wantNote != "" && !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, tc.wantNote) }) {
				t.Errorf("notes %q lack %q", res.Notes, tc.wantNote)
			}
		})
	}
}

func TestLiteral(t *testing.T) {
	tests := []struct {
		src  string
		want string
		ok   bool
	}{
		{`/etc/a`, "/etc/a", true},
		{`'/etc/a b'`, "/etc/a b", true},
		{`"/etc/a"`, "/etc/a", true},
		{`/etc/"a"'b'`, "/etc/ab", true},
		{`"$HOME/a"`, "", false},
		{`/etc/*.conf`, "", false},
		{`$(cat x)`, "", false},
		{`$'/etc/a'`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			got, ok := literal(parseWord(t, tc.src))
			if got != tc.want || ok != tc.ok {
				t.Errorf("literal(%s) = %q, %v; want %q, %v", tc.src, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func parseWord(t *testing.T, src string) *syntax.Word {
	t.Helper()
	f, err := syntax.NewParser().Parse(strings.NewReader("x "+src+"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	return f.Stmts[0].Cmd.(*syntax.CallExpr).Args[1]
}
