// Package slimtest makes root filesystems from the host's own binaries for the
// tests of slim and of the slim command: a program compiled with the host's gcc,
// and the libraries and loader ldd reports for it, at the host's paths; a Go
// binary built with the host's go; a test CA and server certificate.
package slimtest

import (
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Compile builds C source src into out with the host's gcc.
func Compile(t *testing.T, src, out string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("these tests compile C programs and need gcc: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "prog.c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gcc", append([]string{"-o", out, c}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, b)
	}
}

// LddPaths returns the absolute paths ldd reports for a host binary (loader included).
func LddPaths(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	var paths []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			paths = append(paths, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			paths = append(paths, f[0])
		}
	}
	if len(paths) < 2 {
		t.Fatalf("ldd %s reported too little:\n%s", bin, out)
	}
	return paths
}

// HostCopy replicates the host path p at the same path under root: every
// symlink met on the way is recreated as is (and followed), directories are
// made, the final file is copied. It returns the non-directory paths it made.
func HostCopy(t *testing.T, root, p string) []string {
	t.Helper()
	var made []string
	cur := "/"
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, next)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(next)
			if _, err := os.Lstat(dst); err != nil {
				if err := os.Symlink(target, dst); err != nil {
					t.Fatal(err)
				}
			}
			made = append(made, next)
			if path.IsAbs(target) {
				cur = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		case fi.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			CopyFile(t, next, dst, fi.Mode().Perm())
			made = append(made, next)
		}
		cur = next
	}
	return made
}

// CopyFile copies src to dst (parents made) with perm.
func CopyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// WriteFile writes content at the image path p under root (parents made).
func WriteFile(t *testing.T, root, p, content string, perm os.FileMode) {
	t.Helper()
	dst := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// GoBuild builds the Go module in dir (its own go.mod, no dependencies) with
// the host's go, cgo off, and returns the binary's path.
func GoBuild(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), filepath.Base(dir))
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, b)
	}
	return out
}

// CorpusPackages are the Debian packages every fat image of the slim and advise
// corpora is made of (a case adds its own): a C library, shells and coreutils,
// perl, python3 with its stdlib, busybox, TLS and the CA bundle.
var CorpusPackages = []string{"libc6", "dash", "coreutils", "perl-base", "python3.11-minimal", "libpython3.11-minimal",
	"libpython3.11-stdlib", "python3-minimal", "zlib1g", "libexpat1", "busybox-static", "base-files", "netbase", "libssl3", "libcrypt1",
	"openssl", "ca-certificates", "libbz2-1.0", "liblzma5"}

// PackageRoot makes a root filesystem from the files the host's Debian packages
// pkgs installed (dpkg -L), copied at their paths, with the host's
// nsswitch.conf and a /tmp of mode 1777.
func PackageRoot(t *testing.T, pkgs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, pkg := range pkgs {
		out, err := exec.Command("dpkg", "-L", pkg).Output()
		if err != nil {
			t.Fatalf("dpkg -L %s: %v (the corpus is made of the host's Debian packages)", pkg, err)
		}
		for _, p := range strings.Split(string(out), "\n") {
			if fi, err := os.Lstat(p); err != nil || fi.IsDir() || !strings.HasPrefix(p, "/") {
				continue
			}
			HostCopy(t, root, p)
		}
	}
	HostCopy(t, root, "/etc/nsswitch.conf")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return root
}
