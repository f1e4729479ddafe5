package slim

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

const helloC = `#include <stdio.h>
#include <math.h>
int main(int argc, char **argv) { printf("hello from slim, sqrt=%.1f\n", sqrt((double)argc * 16)); return 0; }
`

// fixture is a root filesystem holding /app/hello (dynamic, libm and libc), its
// libraries and loader at the host's paths, /bin/sh with its closure, and a
// few hundred unrelated files.
type fixture struct {
	root      string
	hello     []string // the closure of /app/hello, as the host's ldd sees it
	sh        []string // the closure of /bin/sh
	unrelated int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: t.TempDir()}
	bin := filepath.Join(f.root, "app", "hello")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	slimtest.Compile(t, helloC, bin, "-lm")
	f.hello = append(f.hello, "/app/hello")
	for _, p := range slimtest.LddPaths(t, bin) {
		f.hello = append(f.hello, slimtest.HostCopy(t, f.root, p)...)
	}
	f.sh = append(f.sh, slimtest.HostCopy(t, f.root, "/bin/sh")...)
	shReal, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slimtest.LddPaths(t, shReal) {
		f.sh = append(f.sh, slimtest.HostCopy(t, f.root, p)...)
	}
	f.hello, f.sh = uniqSorted(f.hello), uniqSorted(f.sh)
	for i := 0; i < 300; i++ {
		var p string
		switch i % 3 {
		case 0:
			p = fmt.Sprintf("/usr/share/doc/pkg%d/README", i)
		case 1:
			p = fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libunused%d.so.1", i)
		default:
			p = fmt.Sprintf("/etc/conf%d.d/settings", i)
		}
		slimtest.WriteFile(t, f.root, p, strings.Repeat("x", i), 0o644)
		f.unrelated++
	}
	slimtest.WriteFile(t, f.root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/group", "root:x:0:\napp:x:1000:\n", 0o644)
	return f
}

func uniqSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func TestClosureELF(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		cfg  v1.Config
		opts Options
		want []string
	}{
		{name: "cmd absolute", cfg: v1.Config{Cmd: []string{"/app/hello", "x"}}, want: f.hello},
		{name: "entrypoint through PATH", cfg: v1.Config{Env: []string{"PATH=/nowhere:/app"}, Entrypoint: []string{"hello"}}, want: f.hello},
		{name: "relative to workdir", cfg: v1.Config{WorkingDir: "/app", Cmd: []string{"./hello"}}, want: append([]string{"/app"}, f.hello...)},
		{name: "option overrides cmd", cfg: v1.Config{Cmd: []string{"/bin/sh"}}, opts: Options{Entrypoint: "/app/hello"}, want: f.hello},
		{name: "named user", cfg: v1.Config{User: "app", Cmd: []string{"/app/hello"}}, want: append([]string{"/etc/group", "/etc/passwd"}, f.hello...)},
		{name: "numeric user", cfg: v1.Config{User: "1000:1000", Cmd: []string{"/app/hello"}}, want: f.hello},
		{name: "include dir", cfg: v1.Config{Cmd: []string{"/app/hello"}}, opts: Options{Include: []string{"/usr/share/doc/pkg3"}},
			want: append([]string{"/usr/share/doc/pkg3", "/usr/share/doc/pkg3/README"}, f.hello...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Closure(f.root, tc.cfg, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// glibc programs get the files NSS reads (the fixture has no
			// nsswitch.conf: glibc's default, "files" for users and groups).
			want := append(append([]string{}, tc.want...), "/etc/group", "/etc/passwd")
			if diff := cmp.Diff(uniqSorted(want), res.Paths()); diff != "" {
				t.Errorf("closure paths (-want +got):\n%s", diff)
			}
			if res.Entrypoint != "/app/hello" {
				t.Errorf("entrypoint %q", res.Entrypoint)
			}
		})
	}
	res, err := Closure(f.root, v1.Config{Cmd: []string{"/app/hello"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, e := range res.Entries {
		why[e.Path] = strings.TrimSpace(e.Why + " " + e.By)
	}
	if why["/app/hello"] != "entrypoint" {
		t.Errorf("why /app/hello = %q", why["/app/hello"])
	}
	libm := ""
	for _, p := range f.hello {
		if strings.HasPrefix(path.Base(p), "libm.so") {
			libm = p
		}
	}
	if why[libm] != WhyNeeded+" /app/hello" {
		t.Errorf("why %s = %q, want DT_NEEDED /app/hello", libm, why[libm])
	}
	if res.Bytes() == 0 || len(res.Entries) >= f.unrelated {
		t.Errorf("closure has %d entries, %d bytes", len(res.Entries), res.Bytes())
	}
}

func TestClosureRunpathOrigin(t *testing.T) {
	f := newFixture(t)
	slimtest.Compile(t, "int greet(void) { return 7; }\n", filepath.Join(f.root, "app", "lib", "libgreet.so"), "-shared", "-fPIC")
	// A decoy of the same name elsewhere must not be chosen over RUNPATH: the
	// loader searches RUNPATH before the default directories.
	slimtest.WriteFile(t, f.root, "/usr/lib/libgreet.so", "not an ELF file", 0o644)
	src := "int greet(void);\nint main(void) { return greet() == 7 ? 0 : 1; }\n"
	slimtest.Compile(t, src, filepath.Join(f.root, "app", "greeter"), "-L"+filepath.Join(f.root, "app", "lib"), "-lgreet", "-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags")
	res, err := Closure(f.root, v1.Config{Cmd: []string{"/app/greeter"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Paths()
	want := map[string]bool{"/app/greeter": true, "/app/lib/libgreet.so": true}
	for _, p := range got {
		delete(want, p)
		if p == "/usr/lib/libgreet.so" {
			t.Errorf("decoy /usr/lib/libgreet.so chosen")
		}
	}
	if len(want) != 0 {
		t.Errorf("closure %v lacks %v", got, want)
	}
}

func TestClosureLdSoConf(t *testing.T) {
	f := newFixture(t)
	slimtest.Compile(t, "int greet(void) { return 7; }\n", filepath.Join(f.root, "opt", "greet", "libgreet.so"), "-shared", "-fPIC")
	src := "int greet(void);\nint main(void) { return greet() == 7 ? 0 : 1; }\n"
	slimtest.Compile(t, src, filepath.Join(f.root, "app", "greeter"), "-L"+filepath.Join(f.root, "opt", "greet"), "-lgreet")
	res, err := Closure(f.root, v1.Config{Cmd: []string{"/app/greeter"}}, Options{})
	if !errors.Is(err, ErrUnresolved) {
		t.Fatalf("without ld.so.conf: err = %v, want ErrUnresolved", err)
	}
	slimtest.WriteFile(t, f.root, "/etc/ld.so.conf", "# comment\ninclude /etc/ld.so.conf.d/*.conf\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/ld.so.conf.d/greet.conf", "/opt/greet\n", 0o644)
	res, err = Closure(f.root, v1.Config{Cmd: []string{"/app/greeter"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range res.Paths() {
		found = found || p == "/opt/greet/libgreet.so"
	}
	if !found {
		t.Errorf("closure %v lacks /opt/greet/libgreet.so", res.Paths())
	}
}

func TestClosureMissingLibrary(t *testing.T) {
	f := newFixture(t)
	lib := filepath.Join(t.TempDir(), "libgone.so")
	slimtest.Compile(t, "int gone(void) { return 0; }\n", lib, "-shared", "-fPIC")
	slimtest.Compile(t, "int gone(void);\nint main(void) { return gone(); }\n", filepath.Join(f.root, "app", "broken"), "-L"+filepath.Dir(lib), "-lgone")
	res, err := Closure(f.root, v1.Config{Cmd: []string{"/app/broken"}}, Options{})
	if !errors.Is(err, ErrUnresolved) {
		t.Fatalf("err = %v, want ErrUnresolved", err)
	}
	if !strings.Contains(err.Error(), "libgone.so needed by /app/broken") {
		t.Errorf("error does not name the library and who needs it: %v", err)
	}
	if res == nil || len(res.Entries) == 0 {
		t.Errorf("no partial result with the error")
	}
}

func TestClosureScript(t *testing.T) {
	f := newFixture(t)
	slimtest.WriteFile(t, f.root, "/app/run.sh", "#!/bin/sh -e\necho hi\n", 0o755)
	slimtest.WriteFile(t, f.root, "/app/envrun", "#!/usr/bin/env hello\n", 0o755)
	if err := os.MkdirAll(filepath.Join(f.root, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	envBin := filepath.Join(f.root, "usr", "bin", "env")
	if _, err := os.Lstat(envBin); err != nil {
		slimtest.WriteFile(t, f.root, "/usr/bin/env", "#!/bin/sh\n", 0o755)
	}
	tests := []struct {
		name string
		cfg  v1.Config
		want []string
	}{
		{name: "sh script", cfg: v1.Config{Cmd: []string{"/app/run.sh"}}, want: append([]string{"/app/run.sh"}, f.sh...)},
		{name: "env script", cfg: v1.Config{Env: []string{"PATH=/usr/bin:/app"}, Cmd: []string{"/app/envrun"}},
			want: append(append(append([]string{"/app/envrun"}, hostPathsOf(t, f.root, "/usr/bin/env")...), f.hello...), f.sh...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Closure(f.root, tc.cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// glibc programs get the files NSS reads (the fixture has no
			// nsswitch.conf: glibc's default, "files" for users and groups).
			want := append(append([]string{}, tc.want...), "/etc/group", "/etc/passwd")
			if diff := cmp.Diff(uniqSorted(want), res.Paths()); diff != "" {
				t.Errorf("closure paths (-want +got):\n%s", diff)
			}
		})
	}
}

// hostPathsOf lists the symlinks and file met resolving p in root (a test-side
// oracle for the merged-/usr links of the fixture).
func hostPathsOf(t *testing.T, root, p string) []string {
	t.Helper()
	w := &walker{root: root}
	var out []string
	final, err := w.resolve(p, func(at, _ string) { out = append(out, at) })
	if err != nil {
		t.Fatal(err)
	}
	return append(out, final)
}

func TestClosureStaysInRoot(t *testing.T) {
	root := t.TempDir()
	// Links that would reach the host's gcc (and shell) if followed outside root.
	if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"abs":     "/usr/bin/gcc",
		"dotdot":  "../../../../../../usr/bin/gcc",
		"loop":    "loop",
		"bad-sh":  "script",
		"notadir": "/app/script/x",
	} {
		if err := os.Symlink(target, filepath.Join(root, "app", name)); err != nil {
			t.Fatal(err)
		}
	}
	slimtest.WriteFile(t, root, "/app/script", "#!/bin/sh\n", 0o755)
	for _, ep := range []string{"/app/abs", "/app/dotdot", "/app/loop", "/app/bad-sh", "/app/notadir", "/app/../../../usr/bin/gcc"} {
		t.Run(ep, func(t *testing.T) {
			_, err := Closure(root, v1.Config{Cmd: []string{ep}}, Options{})
			if err == nil {
				t.Fatalf("closure of %s succeeded: it followed a path outside the root", ep)
			}
		})
	}
}

func TestClosureNoEntrypoint(t *testing.T) {
	if _, err := Closure(t.TempDir(), v1.Config{}, Options{}); !errors.Is(err, ErrNoEntrypoint) {
		t.Errorf("err = %v, want ErrNoEntrypoint", err)
	}
}

func TestNamedUser(t *testing.T) {
	for u, want := range map[string]bool{"": false, "0": false, "1000:1000": false, "app": true, "1000:staff": true, "app:1000": true} {
		if got := namedUser(u); got != want {
			t.Errorf("namedUser(%q) = %v, want %v", u, got, want)
		}
	}
}

// FuzzClosureELF feeds arbitrary bytes as the entrypoint: Closure must never
// panic and never leave the root.
func FuzzClosureELF(f *testing.F) {
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("#!/bin/sh\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		slimtest.WriteFile(t, root, "/bin/x", string(data), 0o755)
		Closure(root, v1.Config{Cmd: []string{"/bin/x"}}, Options{})
	})
}

// TestClosureHostileFiles: the image is hostile, and the configuration files
// the closure reads may be FIFOs (an open would wait forever): /etc/ld.so.conf
// is then skipped and /etc/nsswitch.conf refused by name, at once.
func TestClosureHostileFiles(t *testing.T) {
	for _, name := range []string{"/etc/ld.so.conf", "/etc/nsswitch.conf"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			p := filepath.Join(f.root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Closure(f.root, v1.Config{Cmd: []string{"/app/hello"}}, Options{})
				done <- err
			}()
			select {
			case err := <-done:
				if name == "/etc/nsswitch.conf" && (err == nil || !strings.Contains(err.Error(), name)) {
					t.Fatalf("err = %v, want %s refused by name", err, name)
				}
				if name == "/etc/ld.so.conf" && err != nil {
					t.Fatalf("err = %v, want the FIFO skipped", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the closure still reads %s after 10 s", name)
			}
		})
	}
}
