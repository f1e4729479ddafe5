package slim

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// nssFiles are the files glibc's "files" service reads for each database.
var nssFiles = map[string][]string{
	"passwd": {"/etc/passwd"}, "group": {"/etc/group"}, "shadow": {"/etc/shadow"}, "gshadow": {"/etc/gshadow"},
	"hosts": {"/etc/hosts", "/etc/host.conf"}, "networks": {"/etc/networks"}, "protocols": {"/etc/protocols"},
	"services": {"/etc/services"}, "ethers": {"/etc/ethers"}, "rpc": {"/etc/rpc"}, "netgroup": {"/etc/netgroup"},
	"aliases": {"/etc/aliases"}, "initgroups": {"/etc/group"},
}

// defaultNSS is glibc's configuration when /etc/nsswitch.conf is missing.
const defaultNSS = "passwd: files\ngroup: files\nshadow: files\ngshadow: files\nhosts: dns files\nnetworks: dns files\n" +
	"protocols: files\nservices: files\nethers: files\nrpc: files\n"

// tlsLibs are the libraries whose presence means CA certificates are read.
var tlsLibs = []string{"libssl.so", "libcrypto.so", "libgnutls.so", "libnss3.so", "libmbedtls.so", "libwolfssl.so"}

// maxScan bounds how much of one ELF file is scanned for charset names.
const maxScan = 64 << 20

// runtimeFiles adds what the closure's programs open at run time by
// convention rather than by link: NSS modules and files, gconv modules, CA
// certificates, the timezone, /tmp. Everything is read from the image.
func (w *walker) runtimeFiles(cfg v1.Config) error {
	var libc string
	var tls, iconv []string
	for _, p := range w.sortedPaths() {
		e := w.entries[p]
		base := path.Base(p)
		for _, l := range tlsLibs {
			if strings.HasPrefix(base, l) {
				tls = append(tls, p)
			}
		}
		if e.Kind != KindFile {
			continue
		}
		if base == "libc.so.6" && libc == "" {
			libc = p
		}
		if w.importsSymbol(p, "iconv_open") {
			iconv = append(iconv, p)
		}
	}
	if libc != "" {
		if err := w.nss(libc); err != nil {
			return err
		}
	}
	if len(iconv) > 0 && libc != "" {
		if err := w.gconv(libc, iconv); err != nil {
			return err
		}
	}
	if len(tls) > 0 {
		for _, p := range []string{"/etc/ssl/certs", "/usr/lib/ssl/certs", "/usr/lib/ssl/cert.pem", "/etc/ssl/openssl.cnf",
			"/usr/lib/ssl/openssl.cnf", "/etc/pki/tls/certs", "/etc/ssl/cert.pem"} {
			if err := w.addTree(p, WhyCACerts, tls[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("adding CA certificates %s: %w", p, err)
			}
		}
	}
	tz := []string{"/etc/localtime", "/etc/timezone"}
	if v := strings.TrimPrefix(w.env["TZ"], ":"); v != "" && !strings.Contains(v, "..") {
		if path.IsAbs(v) {
			tz = append(tz, v)
		} else {
			dir := w.env["TZDIR"]
			if !path.IsAbs(dir) {
				dir = "/usr/share/zoneinfo"
			}
			tz = append(tz, path.Join(dir, v))
		}
	}
	for _, p := range tz {
		if _, err := w.add(p, WhyTimezone, ""); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("adding timezone %s: %w", p, err)
		}
	}
	// CPython finds its prefix by stat-ing a landmark (lib/pythonX.Y/os.py)
	// that it then never opens (os is frozen in): keep it beside the binary.
	for _, p := range w.sortedPaths() {
		if ver, ok := strings.CutPrefix(path.Base(p), "python"); ok && w.entries[p].Kind == KindFile && strings.Count(ver, ".") == 1 && strings.Trim(ver, "0123456789.") == "" {
			prefix := path.Dir(path.Dir(p))
			for _, l := range []string{"os.py", "lib-dynload"} {
				if _, err := w.add(path.Join(prefix, "lib", "python"+ver, l), WhyPython, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("adding python landmark: %w", err)
				}
			}
		}
	}
	for _, p := range []string{"/tmp", "/var/tmp"} {
		if _, err := w.add(p, WhyTmp, ""); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("adding %s: %w", p, err)
		}
	}
	return nil
}

func (w *walker) sortedPaths() []string {
	out := make([]string, 0, len(w.entries))
	for p := range w.entries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// readImageFile reads a small file of the image (at most limit bytes).
func (w *walker) readImageFile(p string, limit int64) ([]byte, error) {
	final, err := w.resolve(p, nil)
	if err != nil {
		return nil, err
	}
	f, err := w.open(final)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// nss adds /etc/nsswitch.conf, the modules of the services it names (found
// where the loader would find libc's neighbours) and the files the "files"
// service reads.
func (w *walker) nss(libc string) error {
	conf, err := w.readImageFile("/etc/nsswitch.conf", 1<<20)
	switch {
	case err == nil:
		if _, err := w.add("/etc/nsswitch.conf", WhyNSS, libc); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		conf = []byte(defaultNSS)
	default:
		return fmt.Errorf("reading /etc/nsswitch.conf: %w", err)
	}
	class, machine, ok := w.elfIdent(libc)
	if !ok {
		return nil
	}
	dirs := append([]string{path.Dir(libc)}, w.ldSoConf()...)
	dirs = append(dirs, w.defaultDirs()...)
	done := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		db, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		db = strings.TrimSpace(db)
		for _, svc := range strings.Fields(rest) {
			if strings.HasPrefix(svc, "[") || strings.HasSuffix(svc, "]") || strings.ContainsAny(svc, "/=[]") {
				continue // an action such as [NOTFOUND=return]
			}
			if svc == "files" || svc == "compat" {
				for _, f := range nssFiles[db] {
					if _, err := w.addDetail(f, WhyNSS, "/etc/nsswitch.conf", db+": "+svc); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
			if done[svc] {
				continue
			}
			done[svc] = true
			lib := "libnss_" + svc + ".so.2"
			found, err := w.findLibrary(lib, dirs, class, machine)
			if err != nil {
				return err
			}
			if found == "" {
				// glibc skips a service it cannot load; so does the image.
				w.notes = append(w.notes, fmt.Sprintf("NSS service %q of /etc/nsswitch.conf has no %s in the image", svc, lib))
				continue
			}
			if _, err := w.addDetail(found, WhyNSS, "/etc/nsswitch.conf", db+": "+svc); err != nil {
				return fmt.Errorf("adding NSS module %s: %w", lib, err)
			}
		}
	}
	return nil
}

// elfIdent returns the class and machine of the ELF object at p.
func (w *walker) elfIdent(p string) (elf.Class, elf.Machine, bool) {
	final, err := w.resolve(p, nil)
	if err != nil {
		return 0, 0, false
	}
	ef, err := elf.Open(w.host(final))
	if err != nil {
		return 0, 0, false
	}
	defer ef.Close()
	return ef.Class, ef.Machine, true
}

// importsSymbol reports whether the ELF object at p (resolved) imports sym
// from a shared library.
func (w *walker) importsSymbol(p, sym string) bool {
	ef, err := elf.Open(w.host(p))
	if err != nil {
		return false
	}
	defer ef.Close()
	syms, err := ef.DynamicSymbols()
	if err != nil {
		return false
	}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && s.Name == sym {
			return true
		}
	}
	return false
}

// gconv adds glibc's gconv configuration and the modules of the charsets
// that the programs importing iconv_open name literally (strings of their
// files that gconv-modules knows as a charset or alias). A charset built at
// run time is not seen: the observed closure or --include adds it.
func (w *walker) gconv(libc string, users []string) error {
	dir := path.Join(path.Dir(libc), "gconv")
	if v := w.env["GCONV_PATH"]; path.IsAbs(v) {
		dir = v
	}
	if _, err := w.resolve(dir, nil); err != nil {
		return nil
	}
	for _, f := range []string{"gconv-modules", "gconv-modules.cache", "gconv-modules.d"} {
		if err := w.addTree(path.Join(dir, f), WhyGconv, users[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("adding gconv configuration: %w", err)
		}
	}
	confs := []string{path.Join(dir, "gconv-modules")}
	confs = append(confs, w.glob(path.Join(dir, "gconv-modules.d", "*.conf"))...)
	alias := map[string]string{}     // alias -> charset
	modules := map[string][]string{} // charset -> module files
	for _, c := range confs {
		b, err := w.readImageFile(c, 4<<20)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line, _, _ = strings.Cut(line, "#")
			f := strings.Fields(line)
			norm := func(s string) string { return strings.ToUpper(strings.TrimSuffix(s, "//")) }
			switch {
			case len(f) >= 3 && f[0] == "alias":
				alias[norm(f[1])] = norm(f[2])
			case len(f) >= 4 && f[0] == "module":
				for _, cs := range []string{norm(f[1]), norm(f[2])} {
					if cs != "INTERNAL" && !strings.ContainsAny(f[3], "/") {
						modules[cs] = append(modules[cs], f[3])
					}
				}
			}
		}
	}
	for _, u := range users {
		for _, s := range w.stringsOf(u) {
			cs := strings.ToUpper(strings.TrimSuffix(s, "//"))
			if a, ok := alias[cs]; ok {
				cs = a
			}
			for _, m := range modules[cs] {
				if _, err := w.addDetail(path.Join(dir, m+".so"), WhyGconv, u, cs); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("adding gconv module %s: %w", m, err)
				}
			}
		}
	}
	return nil
}

// stringsOf returns the printable strings (3 to 64 bytes) of the file at p.
func (w *walker) stringsOf(p string) []string {
	f, err := w.open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	r := bufio.NewReader(io.LimitReader(f, maxScan))
	var cur []byte
	flush := func() {
		if len(cur) >= 3 && len(cur) <= 64 && !seen[string(cur)] {
			seen[string(cur)] = true
			out = append(out, string(cur))
		}
		cur = cur[:0]
	}
	for {
		c, err := r.ReadByte()
		if err != nil {
			break
		}
		if c >= 0x21 && c < 0x7f {
			if len(cur) <= 64 {
				cur = append(cur, c)
			}
			continue
		}
		flush()
	}
	flush()
	return out
}
