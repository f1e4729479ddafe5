package slim

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const iconvC = `#include <iconv.h>
#include <stdio.h>
int main(void) { iconv_t c = iconv_open("UTF-8", "LATIN1"); if (c == (iconv_t)-1) return 1; puts("ok"); return 0; }
`

// closureWhy runs Closure and returns path -> "Why By".
func closureWhy(t *testing.T, root string, cfg v1.Config) (map[string]string, *Result) {
	t.Helper()
	res, err := Closure(root, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range res.Entries {
		got[e.Path] = strings.TrimSpace(e.Why + " " + e.By)
	}
	return got, res
}

func TestClosureNSS(t *testing.T) {
	f := newFixture(t)
	libdir := "/usr/lib/x86_64-linux-gnu"
	for _, l := range []string{"libnss_files.so.2", "libnss_dns.so.2", "libnss_hesiod.so.2"} {
		slimtest.HostCopy(t, f.root, filepath.Join(libdir, l))
	}
	slimtest.WriteFile(t, f.root, "/etc/nsswitch.conf", "# comment: files hesiod\npasswd: files systemd\n"+
		"hosts:  files [NOTFOUND=return] dns\nservices: files\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/hosts", "127.0.0.1 localhost\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/host.conf", "multi on\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/services", "http 80/tcp\n", 0o644)
	slimtest.WriteFile(t, f.root, "/etc/protocols", "tcp 6 TCP\n", 0o644)

	got, res := closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/hello"}})
	for p, why := range map[string]string{
		"/etc/nsswitch.conf":          WhyNSS + " " + libdir + "/libc.so.6",
		libdir + "/libnss_files.so.2": WhyNSS + " /etc/nsswitch.conf",
		libdir + "/libnss_dns.so.2":   WhyNSS + " /etc/nsswitch.conf",
		"/etc/passwd":                 WhyNSS + " /etc/nsswitch.conf",
		"/etc/hosts":                  WhyNSS + " /etc/nsswitch.conf",
		"/etc/host.conf":              WhyNSS + " /etc/nsswitch.conf",
		"/etc/services":               WhyNSS + " /etc/nsswitch.conf",
	} {
		if got[p] != why {
			t.Errorf("%s kept for %q, want %q", p, got[p], why)
		}
	}
	for _, p := range []string{libdir + "/libnss_hesiod.so.2", "/etc/protocols", "/etc/group"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s kept (%s), though nsswitch.conf does not name it", p, got[p])
		}
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, `"systemd"`) }) {
		t.Errorf("no note for the missing systemd module: %q", res.Notes)
	}

	// A program without glibc needs none of it.
	slimtest.WriteFile(t, f.root, "/app/static", "plain data\n", 0o755)
	got, _ = closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/static"}})
	if _, ok := got["/etc/nsswitch.conf"]; ok {
		t.Errorf("nsswitch.conf kept for a program that does not link glibc")
	}
}

func TestClosureGconv(t *testing.T) {
	f := newFixture(t)
	slimtest.Compile(t, iconvC, filepath.Join(f.root, "app", "iconv"))
	gdir := "/usr/lib/x86_64-linux-gnu/gconv"
	for _, p := range []string{"gconv-modules", "gconv-modules.cache", "ISO8859-1.so", "ISO8859-2.so"} {
		if _, err := os.Stat(filepath.Join(gdir, p)); err == nil {
			slimtest.HostCopy(t, f.root, filepath.Join(gdir, p))
		}
	}
	got, _ := closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/iconv"}})
	if got[gdir+"/ISO8859-1.so"] != WhyGconv+" /app/iconv" {
		t.Errorf("LATIN1's module kept for %q; closure %v", got[gdir+"/ISO8859-1.so"], got)
	}
	if got[gdir+"/gconv-modules"] == "" {
		t.Errorf("gconv-modules not kept")
	}
	if _, ok := got[gdir+"/ISO8859-2.so"]; ok {
		t.Errorf("ISO8859-2.so kept, though nothing names it")
	}
	got, _ = closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/hello"}})
	if _, ok := got[gdir+"/gconv-modules"]; ok {
		t.Errorf("gconv kept for a program without iconv_open")
	}
}

func TestClosureCACertsTimezoneTmp(t *testing.T) {
	f := newFixture(t)
	libdir := "/usr/lib/x86_64-linux-gnu"
	// A library named like OpenSSL's: only its name matters.
	slimtest.Compile(t, "int ssl_stub(void) { return 1; }\n", filepath.Join(f.root, libdir, "libssl.so.3"),
		"-shared", "-fPIC", "-Wl,-soname,libssl.so.3")
	slimtest.WriteFile(t, f.root, "/usr/share/ca-certificates/mozilla/A.crt", "cert\n", 0o644)
	if err := os.MkdirAll(filepath.Join(f.root, "etc", "ssl", "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/ca-certificates/mozilla/A.crt", filepath.Join(f.root, "etc", "ssl", "certs", "A.pem")); err != nil {
		t.Fatal(err)
	}
	slimtest.WriteFile(t, f.root, "/etc/ssl/certs/ca-certificates.crt", "bundle\n", 0o644)
	slimtest.WriteFile(t, f.root, "/usr/share/zoneinfo/Europe/Paris", "TZif\n", 0o644)
	slimtest.WriteFile(t, f.root, "/usr/share/zoneinfo/Asia/Tokyo", "TZif\n", 0o644)
	slimtest.WriteFile(t, f.root, "/usr/share/zoneinfo/Etc/UTC", "TZif\n", 0o644)
	if err := os.Symlink("/usr/share/zoneinfo/Etc/UTC", filepath.Join(f.root, "etc", "localtime")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(f.root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(f.root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	slimtest.Compile(t, helloC, filepath.Join(f.root, "app", "tls"), "-Wl,--no-as-needed", "-L"+filepath.Join(f.root, libdir), "-l:libssl.so.3", "-lm")

	got, _ := closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/tls"}, Env: []string{"TZ=Europe/Paris"}})
	for p, why := range map[string]string{
		"/etc/ssl/certs/ca-certificates.crt":       WhyCACerts + " " + libdir + "/libssl.so.3",
		"/etc/ssl/certs/A.pem":                     WhyCACerts + " " + libdir + "/libssl.so.3",
		"/usr/share/ca-certificates/mozilla/A.crt": WhyCACerts + " " + libdir + "/libssl.so.3",
		"/etc/localtime":                           WhyTimezone,
		"/usr/share/zoneinfo/Etc/UTC":              WhyTimezone,
		"/usr/share/zoneinfo/Europe/Paris":         WhyTimezone,
		"/tmp":                                     WhyTmp,
	} {
		if got[p] != why {
			t.Errorf("%s kept for %q, want %q", p, got[p], why)
		}
	}
	if _, ok := got["/usr/share/zoneinfo/Asia/Tokyo"]; ok {
		t.Errorf("a zone nothing names was kept")
	}
	got, _ = closureWhy(t, f.root, v1.Config{Cmd: []string{"/app/hello"}})
	if _, ok := got["/etc/ssl/certs/ca-certificates.crt"]; ok {
		t.Errorf("CA certificates kept for a program without a TLS library")
	}
}
