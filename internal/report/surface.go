package report

import (
	"path"
	"sort"
	"strings"
)

// Program names by category, after canonicalisation (see canonicalName).
var programs = map[string]Category{}

func init() {
	for cat, names := range map[Category][]string{
		Compilers: {"gcc", "cc", "c++", "g++", "cpp", "clang", "clang++", "clang-cpp", "tcc", "musl-gcc",
			"gfortran", "gccgo", "ld", "ld.bfd", "ld.gold", "ld.lld", "lld", "gold", "as", "nasm", "yasm",
			"make", "gmake", "cmake", "ninja", "go", "rustc", "cargo", "javac", "zig", "swiftc"},
		PackageManagers: {"apt", "apt-get", "apt-cache", "aptitude", "dpkg", "dpkg-deb", "dpkg-query",
			"apk", "rpm", "yum", "dnf", "microdnf", "tdnf", "zypper", "pacman", "opkg", "pip", "pipx",
			"easy_install", "npm", "npx", "yarn", "pnpm", "gem", "composer", "conda", "mamba", "nix-env"},
		Shells: {"sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish",
			"busybox", "toybox", "python", "perl", "ruby", "irb", "node", "nodejs", "deno", "bun", "php",
			"lua", "luajit", "tclsh", "wish", "pwsh"},
	} {
		for _, n := range names {
			programs[n] = cat
		}
	}
}

// versionedFamilies are programs installed with a bare version suffix (python3.11, perl5.36.0).
var versionedFamilies = []string{"python", "pip", "perl", "ruby", "lua", "php", "pypy", "tclsh", "wish"}

// gccInternals are the compiler proper and its helpers under /usr/lib/gcc or /usr/libexec/gcc.
var gccInternals = map[string]bool{"cc1": true, "cc1plus": true, "cc1obj": true, "collect2": true,
	"lto1": true, "lto-wrapper": true, "f951": true, "go1": true}

// packageDatabases are the databases of package managers, by the name reports give them.
var packageDatabases = []struct{ path, name string }{
	{"/var/lib/dpkg", "dpkg database"},
	{"/lib/apk/db", "apk database"},
	{"/var/lib/rpm", "rpm database"},
	{"/usr/lib/sysimage/rpm", "rpm database"},
	{"/var/lib/pacman", "pacman database"},
}

// canonicalName strips a target triple prefix (x86_64-linux-gnu-gcc-12) and a version suffix
// (gcc-12, python3.11, perl5.36.0) from a program name.
func canonicalName(base string) string {
	n := base
	if i := strings.Index(n, "-linux-"); i > 0 {
		rest := n[i+len("-linux-"):]
		if j := strings.IndexByte(rest, '-'); j >= 0 && j+1 < len(rest) {
			n = rest[j+1:]
		}
	}
	// "-12", "-15.0.7"
	if i := strings.LastIndexByte(n, '-'); i > 0 && isVersion(n[i+1:]) {
		n = n[:i]
	}
	for _, fam := range versionedFamilies {
		if strings.HasPrefix(n, fam) && isVersion(n[len(fam):]) {
			return fam
		}
	}
	return n
}

func isVersion(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// isBinDir reports whether programs in dir are on a typical PATH: /bin, /usr/local/sbin,
// /usr/local/go/bin, /root/.cargo/bin…
func isBinDir(dir string) bool {
	b := path.Base(dir)
	return b == "bin" || b == "sbin"
}

func isHeader(p string) bool {
	if !strings.HasPrefix(p, "/usr/include/") && !strings.HasPrefix(p, "/usr/local/include/") {
		return false
	}
	switch path.Ext(p) {
	case ".h", ".hh", ".hpp", ".hxx":
		return true
	}
	return false
}

// secretName reports whether a file name alone marks it as a secret.
func secretName(base string) bool {
	switch base {
	case "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk",
		".env", ".netrc", ".git-credentials", ".pgpass":
		return true
	}
	if rest, ok := strings.CutPrefix(base, ".env."); ok {
		switch rest {
		case "example", "sample", "template", "dist", "defaults":
			return false
		}
		return true
	}
	return false
}

// finder accumulates findings while walking the final filesystem.
type finder struct {
	paths map[Category][]string
	names map[Category]map[string]bool
}

func newFinder() *finder {
	return &finder{paths: map[Category][]string{}, names: map[Category]map[string]bool{}}
}

func (f *finder) add(c Category, p, name string) {
	f.paths[c] = append(f.paths[c], p)
	if name != "" {
		if f.names[c] == nil {
			f.names[c] = map[string]bool{}
		}
		f.names[c][name] = true
	}
}

// classify records what node n at path p (in the final filesystem u) adds to the attack surface.
// It returns whether n is an ELF executable.
func (f *finder) classify(u *unionFS, n *node, p string) (elf bool) {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	// What a path runs: the file itself, or what its symlink or hard link points to.
	target := n
	switch n.kind {
	case kindSymlink:
		// n hangs in its directory, so resolving its name from there is
		// resolving p, without splitting p again.
		target = u.resolveFrom(n.parent, []string{n.name}, true)
	case kindHardlink:
		target = u.resolve(n.linkname, true)
	}
	runnable := target != nil && target.kind == kindReg && target.mode&0o111 != 0
	if isBinDir(dir) && runnable {
		canon := canonicalName(base)
		if c, ok := programs[canon]; ok {
			f.add(c, p, canon)
		}
	}
	if n.kind == kindReg && gccInternals[base] && runnable &&
		(strings.HasPrefix(p, "/usr/lib/gcc/") || strings.HasPrefix(p, "/usr/libexec/gcc/")) {
		f.add(Compilers, p, base)
	}
	if (n.kind == kindReg || n.kind == kindHardlink) && isHeader(p) {
		f.add(Headers, p, "")
	}
	if n.kind == kindReg && n.mode&0o6000 != 0 {
		f.add(Setuid, p, base)
	}
	if n.explicit && (n.kind == kindReg || n.kind == kindDir) && n.mode&0o002 != 0 && n.mode&0o1000 == 0 {
		f.add(WorldWritable, p, "")
	}
	if n.explicit && n.flags&flagCapability != 0 {
		f.add(Capabilities, p, base)
	}
	if n.kind == kindReg && (n.flags&flagPrivateKey != 0 || secretName(base)) {
		f.add(Secrets, p, base)
	}
	return n.kind == kindReg && n.flags&flagELF != 0 && (n.mode&0o111 != 0 || isBinDir(dir))
}

// databases records package databases that hold at least one file.
func (f *finder) databases(u *unionFS) {
	for _, db := range packageDatabases {
		if n := u.resolve(db.path, true); n != nil && n.isDir() && holdsFile(n) {
			f.add(PackageManagers, db.path, db.name)
		}
	}
}

func holdsFile(n *node) bool {
	for _, c := range n.children {
		if c.kind == kindReg || c.kind == kindHardlink || (c.isDir() && holdsFile(c)) {
			return true
		}
	}
	return false
}

// isRootUser reports whether a config User runs as root: "", "0", "root", "0:…", "root:…".
func isRootUser(user string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return name == "" || name == "0" || name == "root"
}

// findings returns one Finding per category, in Categories order.
func (f *finder) findings(user string) []Finding {
	out := make([]Finding, 0, len(Categories))
	for _, c := range Categories {
		fd := Finding{Category: c, Paths: f.paths[c], Names: []string{}}
		if fd.Paths == nil {
			fd.Paths = []string{}
		}
		sort.Strings(fd.Paths)
		fd.Paths = dedupSorted(fd.Paths)
		fd.Count = len(fd.Paths)
		for n := range f.names[c] {
			fd.Names = append(fd.Names, n)
		}
		sort.Strings(fd.Names)
		if c == Root && isRootUser(user) {
			fd.Count = 1
			if strings.TrimSpace(user) == "" {
				fd.Detail = "USER is not set"
			} else {
				fd.Detail = "USER is " + user
			}
		}
		out = append(out, fd)
	}
	return out
}

func dedupSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
