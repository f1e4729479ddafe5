package slim

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimbuild/slimbuild/internal/runtime"
)

// ErrUnresolved is wrapped by the error Closure returns when a DT_NEEDED
// library is found nowhere in the image.
var ErrUnresolved = errors.New("shared library not found in the image")

// ErrNoEntrypoint is returned when there is nothing to start from: no
// opts.Entrypoint and neither ENTRYPOINT nor CMD in the config.
var ErrNoEntrypoint = errors.New("no entrypoint: the image has no ENTRYPOINT or CMD and none was given")

// defaultPath is the PATH used when the image's Env has none (as `slimbuild run` does).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxLinks bounds symlink resolution, as the kernel's ELOOP does.
const maxLinks = 40

// Options tune Closure.
type Options struct {
	// Entrypoint, if set, is where the walk starts instead of the config's
	// ENTRYPOINT (or CMD) first word. Resolved through the image's PATH
	// when it holds no slash.
	Entrypoint string
	// Include lists extra paths (files or whole directories) to keep:
	// what a program opens at run time and no static walk can see
	// (dlopen'ed plugins, data files, certificates).
	Include []string
	// Observed maps paths that a probe opened (image paths) to the probe's
	// description; those found in the image join the closure.
	Observed map[string]string
}

// Kind is the type of a path in the closure.
type Kind string

const (
	KindFile    Kind = "file"
	KindSymlink Kind = "symlink"
	KindDir     Kind = "dir"
	KindOther   Kind = "other" // devices, fifos
)

// Entry is one path of the closure and why it is there.
type Entry struct {
	Path string `json:"path"` // absolute, clean, inside the image; its parent chain holds no symlinks
	Kind Kind   `json:"kind"`
	Size int64  `json:"size"` // regular files only
	// Why names the rule that kept the path (one of the Why... constants) and
	// By the path whose needs it met ("" for the roots: entrypoint, included
	// paths, the image's config); following By through the Result gives the
	// whole chain.
	Why string `json:"why"`
	By  string `json:"by,omitempty"`
	// Detail adds what the rule matched: a symlink's target, the NSS
	// service, the probe.
	Detail string `json:"detail,omitempty"`
}

// The reasons a path is kept (Entry.Why).
const (
	WhyEntrypoint    = "entrypoint"
	WhyArgument      = "argument of entrypoint"
	WhyInterp        = "PT_INTERP"
	WhyNeeded        = "DT_NEEDED"
	WhyShebang       = "#!"
	WhySymlink       = "symlink"
	WhyScriptCommand = "script command"
	WhyScriptPath    = "script path"
	WhyNSS           = "nsswitch.conf"
	WhyGconv         = "gconv"
	WhyCACerts       = "CA certificates"
	WhyTimezone      = "timezone"
	WhyUser          = "USER"
	WhyWorkdir       = "working directory"
	WhyTmp           = "/tmp"
	WhyPython        = "python prefix landmark"
	WhyIncluded      = "included"
	WhyObserved      = "observed"
)

// Result is the static file closure of an entrypoint.
type Result struct {
	Entrypoint string  `json:"entrypoint"` // the resolved path the walk started from
	Entries    []Entry `json:"entries"`    // sorted by Path, no duplicates; parents not listed unless included
	// Notes say what the static walk could not be sure of (a script it
	// could not parse, a command it could not find); they are not errors.
	Notes []string `json:"notes,omitempty"`
}

// Paths returns the closure's paths in order.
func (r *Result) Paths() []string {
	out := make([]string, len(r.Entries))
	for i, e := range r.Entries {
		out[i] = e.Path
	}
	return out
}

// Bytes is the sum of the closure's regular file sizes.
func (r *Result) Bytes() int64 {
	var n int64
	for _, e := range r.Entries {
		n += e.Size
	}
	return n
}

// walker holds the state of one Closure.
type walker struct {
	root     string
	env      map[string]string
	entries  map[string]*Entry
	visited  map[string]bool // objects whose dependencies were walked
	ldConf   []string        // directories from /etc/ld.so.conf, loaded once
	ldLoaded bool
	missing  []string
	notes    []string
	scripts  map[string]bool // shell scripts already parsed
}

// Closure computes the files needed to run the image's entrypoint, walking the
// filesystem under root (the image's final filesystem, e.g. a mounted view). Every path is
// resolved inside root: absolute symlinks point at root, ".." stops at root, and
// nothing of the host is read. The error for unresolved libraries names each
// library and who needs it, and wraps ErrUnresolved; the Result is returned with it.
func Closure(root string, cfg v1.Config, opts Options) (*Result, error) {
	w := &walker{root: root, env: envMap(cfg.Env), entries: map[string]*Entry{}, visited: map[string]bool{}, scripts: map[string]bool{}}
	first := opts.Entrypoint
	if first == "" {
		args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
		if len(args) == 0 {
			return nil, ErrNoEntrypoint
		}
		first = args[0]
	}
	ep, err := w.findProgram(first, cfg.WorkingDir)
	if err != nil {
		return nil, fmt.Errorf("resolving entrypoint %q: %w", first, err)
	}
	res := &Result{}
	if res.Entrypoint, err = w.add(ep, WhyEntrypoint, ""); err != nil {
		return nil, fmt.Errorf("adding entrypoint %q: %w", ep, err)
	}
	if opts.Entrypoint == "" {
		args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
		if err := w.walkArgs(ep, args[1:], cfg.WorkingDir); err != nil {
			return nil, err
		}
	}
	for _, inc := range opts.Include {
		if err := w.include(inc); err != nil {
			return nil, fmt.Errorf("including %q: %w", inc, err)
		}
	}
	obs := make([]string, 0, len(opts.Observed))
	for p := range opts.Observed {
		obs = append(obs, p)
	}
	sort.Strings(obs)
	for _, p := range obs {
		if _, err := w.resolve(p, nil); err != nil {
			continue // made at run time, or gone
		}
		if _, err := w.addDetail(p, WhyObserved, "", opts.Observed[p]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("adding observed %q: %w", p, err)
		}
	}
	if namedUser(cfg.User) {
		for _, p := range []string{"/etc/passwd", "/etc/group"} {
			if _, err := w.addDetail(p, WhyUser, "", cfg.User); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("adding %s: %w", p, err)
			}
		}
	}
	if wd := cfg.WorkingDir; wd != "" && path.IsAbs(wd) {
		if _, err := w.add(wd, WhyWorkdir, ""); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("adding working directory %s: %w", wd, err)
		}
	}
	if err := w.runtimeFiles(cfg); err != nil {
		return nil, err
	}
	res.Notes = w.notes
	for _, e := range w.entries {
		res.Entries = append(res.Entries, *e)
	}
	sort.Slice(res.Entries, func(i, j int) bool { return res.Entries[i].Path < res.Entries[j].Path })
	if len(w.missing) > 0 {
		return res, fmt.Errorf("%w: %s", ErrUnresolved, strings.Join(w.missing, "; "))
	}
	return res, nil
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	if _, ok := m["PATH"]; !ok {
		m["PATH"] = defaultPath
	}
	return m
}

// namedUser reports whether USER names a user or group (rather than numbers only),
// which needs /etc/passwd or /etc/group to resolve.
func namedUser(u string) bool {
	if u == "" {
		return false
	}
	for _, part := range strings.Split(u, ":") {
		if part == "" {
			continue
		}
		if strings.Trim(part, "0123456789") != "" {
			return true
		}
	}
	return false
}

// host returns the host path of an image path whose components hold no symlinks.
func (w *walker) host(p string) string { return filepath.Join(w.root, filepath.FromSlash(p)) }

// open opens the image's file at p (resolved: no symlink on the way) for
// reading, through runtime.OpenInRoot: the image is hostile, and only a regular
// file is read (a FIFO is refused instead of waited on).
func (w *walker) open(p string) (*os.File, error) {
	f, err := runtime.OpenInRoot(w.root, p, 0)
	if err != nil {
		return nil, fmt.Errorf("%s of the image: %w", p, err)
	}
	return f, nil
}

// resolve follows p (absolute, inside the image) component by component,
// calling link for every symlink met with its own path (parents resolved) and
// target, and returns the final path, which has no symlinks. Every component
// must exist.
func (w *walker) resolve(p string, link func(at, target string)) (string, error) {
	cur := "/"
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	hops := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := os.Lstat(w.host(next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(rest) > 0 && !fi.IsDir() {
				return "", fmt.Errorf("resolving %s: %s: %w", p, next, fs.ErrNotExist)
			}
			cur = next
			continue
		}
		if hops++; hops > maxLinks {
			return "", fmt.Errorf("resolving %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(w.host(next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		if link != nil {
			link(next, target)
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// record adds one entry unless the path is there already.
func (w *walker) record(p string, kind Kind, size int64, why, by, detail string) {
	if _, ok := w.entries[p]; ok {
		return
	}
	w.entries[p] = &Entry{Path: p, Kind: kind, Size: size, Why: why, By: by, Detail: detail}
}

// add puts p (and every symlink on the way to it) into the closure, kept for
// why by the path by, and walks what the file it reaches needs. It returns the
// resolved path.
func (w *walker) add(p, why, by string) (string, error) { return w.addDetail(p, why, by, "") }

// addDetail is add with a detail for the entry.
func (w *walker) addDetail(p, why, by, detail string) (string, error) {
	final, err := w.resolve(p, func(at, target string) {
		d := "-> " + target
		if detail != "" {
			d = detail + ", " + d
		}
		w.record(at, KindSymlink, 0, why, by, d)
	})
	if err != nil {
		return "", err
	}
	if final == "/" {
		return final, nil
	}
	fi, err := os.Lstat(w.host(final))
	if err != nil {
		return "", err
	}
	switch {
	case fi.Mode().IsRegular():
		w.record(final, KindFile, fi.Size(), why, by, detail)
		if err := w.walkFile(final); err != nil {
			return "", err
		}
	case fi.IsDir():
		w.record(final, KindDir, 0, why, by, detail)
	default:
		w.record(final, KindOther, 0, why, by, detail)
	}
	return final, nil
}

// walkFile follows what a regular file needs to run: a script's interpreter,
// an ELF object's loader and libraries.
func (w *walker) walkFile(p string) error {
	if w.visited[p] {
		return nil
	}
	w.visited[p] = true
	f, err := w.open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		return w.walkScript(p, head)
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		return w.walkELF(p, f)
	}
	return nil
}

// walkScript adds a script's interpreter (and, for "#!/usr/bin/env prog",
// prog); a shell script is parsed for the commands and paths it names.
func (w *walker) walkScript(p string, head []byte) error {
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return nil
	}
	if _, err := w.add(fields[0], WhyShebang, p); err != nil {
		return fmt.Errorf("interpreter %q of %s: %w", fields[0], p, err)
	}
	interp := path.Base(fields[0])
	if interp == "env" || interp == "busybox" {
		for _, a := range fields[1:] {
			if strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
				continue
			}
			interp = a
			if path.Base(fields[0]) == "busybox" {
				break // an applet, not a program of its own
			}
			prog, err := w.findProgram(a, "/")
			if err != nil {
				return fmt.Errorf("interpreter %q of %s: %w", a, p, err)
			}
			if _, err := w.add(prog, WhyShebang, p); err != nil {
				return fmt.Errorf("interpreter %q of %s: %w", a, p, err)
			}
			break
		}
	}
	if isShell(interp) {
		return w.walkShellFile(p)
	}
	return nil
}

// walkELF adds an ELF object's PT_INTERP and DT_NEEDED libraries, recursively.
func (w *walker) walkELF(p string, r io.ReaderAt) error {
	ef, err := elf.NewFile(r)
	if err != nil {
		// Not a well-formed ELF object: it is kept, but has nothing to follow.
		return nil
	}
	defer ef.Close()
	for _, prog := range ef.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(prog.Open(), 4096))
		if err != nil {
			return fmt.Errorf("reading PT_INTERP of %s: %w", p, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if interp == "" {
			continue
		}
		if _, err := w.add(interp, WhyInterp, p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				w.missing = append(w.missing, fmt.Sprintf("program interpreter %s needed by %s", interp, p))
				continue
			}
			return fmt.Errorf("interpreter %s of %s: %w", interp, p, err)
		}
	}
	needed, err := ef.DynString(elf.DT_NEEDED)
	if err != nil {
		return nil // no dynamic section
	}
	runpath, _ := ef.DynString(elf.DT_RUNPATH)
	var rpath []string
	if len(runpath) == 0 {
		rpath, _ = ef.DynString(elf.DT_RPATH)
	}
	origin := path.Dir(p)
	var dirs []string
	dirs = append(dirs, w.expandPaths(rpath, origin)...)
	if lp := w.env["LD_LIBRARY_PATH"]; lp != "" {
		dirs = append(dirs, w.expandPaths([]string{lp}, origin)...)
	}
	dirs = append(dirs, w.expandPaths(runpath, origin)...)
	dirs = append(dirs, w.ldSoConf()...)
	dirs = append(dirs, w.defaultDirs()...)
	for _, lib := range needed {
		found, err := w.findLibrary(lib, dirs, ef.Class, ef.Machine)
		if err != nil {
			return err
		}
		if found == "" {
			w.missing = append(w.missing, fmt.Sprintf("%s needed by %s", lib, p))
			continue
		}
		if _, err := w.add(found, WhyNeeded, p); err != nil {
			return fmt.Errorf("library %s needed by %s: %w", lib, p, err)
		}
	}
	return nil
}

// expandPaths splits colon-separated search paths and expands $ORIGIN, $LIB and
// $PLATFORM as the loader does on x86-64.
func (w *walker) expandPaths(lists []string, origin string) []string {
	var out []string
	for _, list := range lists {
		for _, d := range strings.Split(list, ":") {
			if d == "" {
				continue
			}
			for _, v := range []struct{ name, val string }{{"ORIGIN", origin}, {"LIB", "lib64"}, {"PLATFORM", "x86_64"}} {
				d = strings.ReplaceAll(d, "${"+v.name+"}", v.val)
				d = strings.ReplaceAll(d, "$"+v.name, v.val)
			}
			if !path.IsAbs(d) {
				continue // the loader resolves these against the process's cwd; not statically knowable
			}
			out = append(out, path.Clean(d))
		}
	}
	return out
}

// findLibrary looks for lib in dirs and returns the first candidate of the
// right ELF class and machine, or "" when there is none.
func (w *walker) findLibrary(lib string, dirs []string, class elf.Class, machine elf.Machine) (string, error) {
	if strings.Contains(lib, "/") {
		if _, err := w.resolve(lib, nil); err != nil {
			return "", nil
		}
		return lib, nil
	}
	for _, d := range dirs {
		cand := path.Join(d, lib)
		final, err := w.resolve(cand, nil)
		if err != nil {
			continue
		}
		fi, err := os.Stat(w.host(final))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if !w.compatible(final, class, machine) {
			continue
		}
		return cand, nil
	}
	return "", nil
}

// compatible reports whether the ELF object at p (resolved) matches class and
// machine; the loader skips libraries that do not.
func (w *walker) compatible(p string, class elf.Class, machine elf.Machine) bool {
	ef, err := elf.Open(w.host(p))
	if err != nil {
		return false
	}
	defer ef.Close()
	return ef.Class == class && ef.Machine == machine
}

// defaultDirs are the loader's trusted directories plus every multiarch
// directory present in the image.
func (w *walker) defaultDirs() []string {
	dirs := []string{"/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}
	for _, base := range []string{"/lib", "/usr/lib"} {
		final, err := w.resolve(base, nil)
		if err != nil {
			continue
		}
		ents, err := os.ReadDir(w.host(final))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && strings.Count(e.Name(), "-") >= 2 && strings.Contains(e.Name(), "-linux-") {
				if d := path.Join(base, e.Name()); !slices.Contains(dirs, d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	return dirs
}

// ldSoConf reads the image's /etc/ld.so.conf and its includes (once).
func (w *walker) ldSoConf() []string {
	if !w.ldLoaded {
		w.ldLoaded = true
		seen := map[string]bool{}
		w.readLdConf("/etc/ld.so.conf", seen, 0)
	}
	return w.ldConf
}

func (w *walker) readLdConf(p string, seen map[string]bool, depth int) {
	if depth > 8 || seen[p] {
		return
	}
	seen[p] = true
	final, err := w.resolve(p, nil)
	if err != nil {
		return
	}
	f, err := w.open(final)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "include"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			for _, pat := range strings.Fields(rest) {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(p), pat)
				}
				for _, m := range w.glob(pat) {
					w.readLdConf(m, seen, depth+1)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "hwcap ") {
			continue
		}
		for _, d := range strings.FieldsFunc(line, func(r rune) bool { return r == ':' || r == ',' || r == ' ' || r == '\t' }) {
			if path.IsAbs(d) && !slices.Contains(w.ldConf, path.Clean(d)) {
				w.ldConf = append(w.ldConf, path.Clean(d))
			}
		}
	}
}

// glob matches pat's last element inside the image (its directory resolved in root).
func (w *walker) glob(pat string) []string {
	dir, base := path.Split(pat)
	final, err := w.resolve(dir, nil)
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(w.host(final))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if ok, _ := path.Match(base, e.Name()); ok {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// findProgram resolves a command name as execvp would: with a slash it is a
// path (relative to wd), without one it is looked up in PATH.
func (w *walker) findProgram(name, wd string) (string, error) {
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			if wd == "" {
				wd = "/"
			}
			name = path.Join(wd, name)
		}
		if _, err := w.resolve(name, nil); err != nil {
			return "", err
		}
		return path.Clean(name), nil
	}
	for _, d := range strings.Split(w.env["PATH"], ":") {
		if d == "" || !path.IsAbs(d) {
			continue
		}
		cand := path.Join(d, name)
		final, err := w.resolve(cand, nil)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(w.host(final)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %s: %w", name, w.env["PATH"], fs.ErrNotExist)
}

// include adds p and, for a directory, everything below it; symlinks found
// below are followed so that their targets come along.
func (w *walker) include(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("include paths must be absolute")
	}
	return w.addTree(p, WhyIncluded, "")
}

// addTree adds p and, for a directory, everything below it; symlinks found
// below are followed so that their targets come along.
func (w *walker) addTree(p, why, by string) error {
	final, err := w.add(p, why, by)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(w.host(final))
	if err != nil || !fi.IsDir() {
		return err
	}
	return filepath.WalkDir(w.host(final), func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(w.root, hp)
		if err != nil {
			return err
		}
		ip := "/" + filepath.ToSlash(rel)
		if ip == final {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			w.record(ip, KindSymlink, 0, why, by, "-> "+target)
			if _, err := w.add(ip, why, by); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		_, err = w.add(ip, why, by)
		return err
	})
}
