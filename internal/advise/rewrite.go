package advise

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Node is one path of the closure as the slim layer holds it (parents
// included), with the metadata the runtime stage must reproduce.
type Node struct {
	Path     string // absolute, clean
	Type     byte   // tar.TypeDir, TypeReg, TypeLink (a hard link: copied as a file) or TypeSymlink
	Mode     int64  // permission and setuid/setgid/sticky bits, as in a tar header
	UID, GID int
	Link     string // a symlink's target
	Xattrs   bool   // the path has extended attributes (COPY does not carry them)
	size     int64  // a regular file's size (layerNodes)
}

// RewriteOptions tune Rewrite.
type RewriteOptions struct {
	// Base is the runtime stage's base image; "" means scratch.
	Base string
	// Config is the built image's runtime config, repeated in the runtime stage.
	Config v1.Config
	// Notes come from earlier steps (the closure's own notes, the probes); they
	// head the file with the notes Rewrite adds.
	Notes []string
}

// Rewritten is an advised Dockerfile.
type Rewritten struct {
	// Builder is the name of the original (last) stage in the new file.
	Builder string
	// Notes is what the rewrite could not be sure of or could not carry over.
	Notes []string

	directives []string // the original's leading parser directive lines
	body       []byte
}

// Bytes renders the Dockerfile: parser directives first (they must stay
// first), then extra and the notes as comments, then the stages.
func (r *Rewritten) Bytes(extra ...string) []byte {
	var b bytes.Buffer
	for _, d := range r.directives {
		b.WriteString(d)
		b.WriteByte('\n')
	}
	b.WriteString("# Multistage build written by `slimbuild advise`: the original stage builds,\n")
	b.WriteString("# the runtime stage keeps only what the program was found to need.\n")
	for _, n := range append(append([]string{}, extra...), r.Notes...) {
		b.WriteString(comment(n))
	}
	b.WriteByte('\n')
	b.Write(r.body)
	return b.Bytes()
}

// comment renders a note as comment lines.
func comment(note string) string {
	var b strings.Builder
	for _, l := range strings.Split(note, "\n") {
		b.WriteString("# NOTE: ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// skeletonDir is where the skeleton stage makes its tree.
const skeletonDir = "/.slimbuild-skeleton"

var directiveLine = regexp.MustCompile(`^#[ \t]*[a-zA-Z][a-zA-Z0-9]*[ \t]*=[ \t]*.+$`)

// Rewrite writes the multistage equivalent of the Dockerfile src (named
// name in errors) whose last stage built an image with opts.Config and
// whose entrypoint needs exactly nodes.
func Rewrite(name string, src []byte, nodes []Node, opts RewriteOptions) (*Rewritten, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	esc := res.EscapeToken
	var froms []*parser.Node
	names := map[string]bool{}
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "from") {
			froms = append(froms, n)
			if st := stageName(n); st != "" {
				names[st] = true
			}
		}
	}
	if len(froms) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction", name)
	}
	last := froms[len(froms)-1]
	r := &Rewritten{Notes: append([]string{}, opts.Notes...)}
	r.Builder = stageName(last)
	rename := r.Builder == ""
	if rename {
		r.Builder = unique("build", names)
	}
	names[r.Builder] = true

	lines := strings.Split(string(src), "\n")
	if rename {
		i := last.EndLine - 1
		if i < 0 || i >= len(lines) {
			return nil, fmt.Errorf("%s:%d: FROM ends past the file", name, last.EndLine)
		}
		l := strings.TrimRight(lines[i], "\r")
		lines[i] = l + " AS " + r.Builder + lines[i][len(l):]
	}
	for len(lines) > 0 && directiveLine.MatchString(strings.TrimRight(lines[0], "\r")) {
		r.directives = append(r.directives, strings.TrimRight(lines[0], "\r"))
		lines = lines[1:]
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(strings.Join(lines, "\n"), "\r\n\t "))
	b.WriteString("\n\n")

	sk, files := plan(nodes, r)
	skName := ""
	if sk != "" {
		skName = unique("slimbuild-skeleton", names)
		fmt.Fprintf(&b, "# Directories COPY cannot make (modes, owners, empty ones) and symlinks (COPY\n# follows a named link), made in the builder and copied as one tree.\n")
		fmt.Fprintf(&b, "FROM %s AS %s\n", r.Builder, skName)
		fmt.Fprintf(&b, "RUN %s\n\n", jsonArray([]string{"/bin/sh", "-c", sk}))
	}
	base := opts.Base
	if base == "" {
		base = "scratch"
	}
	fmt.Fprintf(&b, "FROM %s\n", base)
	if skName != "" {
		fmt.Fprintf(&b, "COPY --from=%s %s\n", skName, jsonArray([]string{skeletonDir + "/", "/"}))
	}
	for _, g := range files {
		fmt.Fprintf(&b, "COPY --from=%s %s\n", r.Builder, jsonArray(append(g.srcs, g.dir)))
	}
	r.Notes = append(r.Notes, writeConfig(&b, opts.Config, esc)...)
	r.body = []byte(b.String())
	return r, nil
}

// stageName is a FROM node's "AS name", lowercased, or "".
func stageName(n *parser.Node) string {
	var words []string
	for c := n.Next; c != nil; c = c.Next {
		words = append(words, c.Value)
	}
	if len(words) == 3 && strings.EqualFold(words[1], "as") {
		return strings.ToLower(words[2])
	}
	return ""
}

// unique is want, or want-N, whichever no stage is named yet.
func unique(want string, names map[string]bool) string {
	if !names[want] {
		return want
	}
	for i := 1; ; i++ {
		if n := want + "-" + strconv.Itoa(i); !names[n] {
			return n
		}
	}
}

// fileGroup is one COPY line: sources in one directory.
type fileGroup struct {
	dir  string // with a trailing slash
	srcs []string
}

// plan splits nodes into the skeleton script (directories COPY cannot make,
// symlinks) and the regular files grouped by directory. Paths COPY cannot
// name literally and special files are left out with a note.
func plan(nodes []Node, r *Rewritten) (string, []fileGroup) {
	sorted := append([]Node{}, nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	// A directory with anything but directories below it is made by COPY.
	filled := map[string]bool{}
	for _, n := range sorted {
		if n.Type != tar.TypeDir {
			for d := path.Dir(n.Path); ; d = path.Dir(d) {
				filled[d] = true
				if d == "/" {
					break
				}
			}
		}
	}
	var script []string
	made := map[string]bool{}
	mkdir := func(d string) {
		if !made[d] {
			made[d] = true
			script = append(script, "mkdir -p "+shQuote("."+d))
		}
	}
	groups := map[string]*fileGroup{}
	var xattrs []string
	for _, n := range sorted {
		if n.Xattrs {
			xattrs = append(xattrs, n.Path)
		}
		rel := "." + n.Path
		switch n.Type {
		case tar.TypeDir:
			if n.Path == "/" {
				continue
			}
			perm := n.Mode & 0o7777
			if filled[n.Path] && perm == 0o755 && n.UID == 0 && n.GID == 0 {
				continue
			}
			mkdir(n.Path)
			if perm != 0o755 {
				script = append(script, fmt.Sprintf("chmod %04o %s", perm, shQuote(rel)))
			}
			if n.UID != 0 || n.GID != 0 {
				script = append(script, fmt.Sprintf("chown %d:%d %s", n.UID, n.GID, shQuote(rel)))
			}
		case tar.TypeSymlink:
			if d := path.Dir(n.Path); d != "/" {
				mkdir(d)
			}
			script = append(script, "ln -s -- "+shQuote(n.Link)+" "+shQuote(rel))
			if n.UID != 0 || n.GID != 0 {
				script = append(script, fmt.Sprintf("chown -h %d:%d %s", n.UID, n.GID, shQuote(rel)))
			}
		case tar.TypeReg, tar.TypeLink:
			if strings.ContainsAny(n.Path, "*?[]\\$\n\r") {
				r.Notes = append(r.Notes, fmt.Sprintf("%s is left out: COPY would read its name as a pattern or a variable; copy it by hand", strconv.Quote(n.Path)))
				continue
			}
			d := path.Dir(n.Path)
			g := groups[d]
			if g == nil {
				g = &fileGroup{dir: strings.TrimSuffix(d, "/") + "/"}
				groups[d] = g
			}
			g.srcs = append(g.srcs, n.Path)
		default:
			r.Notes = append(r.Notes, fmt.Sprintf("%s is a special file (tar type %q) that COPY cannot make; it is left out", strconv.Quote(n.Path), n.Type))
		}
	}
	if len(xattrs) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("extended attributes (e.g. file capabilities) are not copied by COPY: %s", strings.Join(xattrs, ", ")))
	}
	dirs := make([]string, 0, len(groups))
	for d := range groups {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	out := make([]fileGroup, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, *groups[d])
	}
	if len(script) == 0 {
		return "", out
	}
	return "set -e; umask 022; mkdir " + skeletonDir + "; cd " + skeletonDir + "; " + strings.Join(script, "; "), out
}

// shQuote quotes s for sh: single quotes, a quote as '\”.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jsonArray renders words as a JSON array (exec form), without HTML escaping.
func jsonArray(words []string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if words == nil {
		words = []string{}
	}
	_ = enc.Encode(words) // strings always encode
	return strings.TrimSuffix(b.String(), "\n")
}

// quoteWord quotes s so that the Dockerfile's word expansion (with escape
// token esc) gives s back: double quotes, with '"', '$' and esc escaped.
func quoteWord(s string, esc rune) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c == '"' || c == '$' || c == esc {
			b.WriteRune(esc)
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// writeConfig writes the instructions that give an image cfg's runtime config
// and returns notes for what it cannot write.
func writeConfig(b *strings.Builder, cfg v1.Config, esc rune) []string {
	var notes []string
	oneLine := func(field, s string) bool {
		if strings.ContainsAny(s, "\n\r") {
			notes = append(notes, fmt.Sprintf("%s %s holds a line break, which a Dockerfile cannot write; it is left out", field, strconv.Quote(s)))
			return false
		}
		return true
	}
	for _, kv := range cfg.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'$=") {
			notes = append(notes, fmt.Sprintf("ENV entry %s cannot be written as ENV; it is left out", strconv.Quote(kv)))
			continue
		}
		if oneLine("ENV "+k, v) {
			fmt.Fprintf(b, "ENV %s=%s\n", k, quoteWord(v, esc))
		}
	}
	labels := make([]string, 0, len(cfg.Labels))
	for k := range cfg.Labels {
		labels = append(labels, k)
	}
	sort.Strings(labels)
	for _, k := range labels {
		if oneLine("LABEL "+k, k+cfg.Labels[k]) {
			fmt.Fprintf(b, "LABEL %s=%s\n", quoteWord(k, esc), quoteWord(cfg.Labels[k], esc))
		}
	}
	ports := make([]string, 0, len(cfg.ExposedPorts))
	for p := range cfg.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	for _, p := range ports {
		if regexp.MustCompile(`^[0-9]+(-[0-9]+)?(/[a-z]+)?$`).MatchString(p) {
			fmt.Fprintf(b, "EXPOSE %s\n", p)
		} else {
			notes = append(notes, fmt.Sprintf("exposed port %s is not a port; it is left out", strconv.Quote(p)))
		}
	}
	if len(cfg.Volumes) > 0 {
		vols := make([]string, 0, len(cfg.Volumes))
		for v := range cfg.Volumes {
			vols = append(vols, v)
		}
		sort.Strings(vols)
		fmt.Fprintf(b, "VOLUME %s\n", jsonArray(vols))
	}
	if cfg.StopSignal != "" && oneLine("STOPSIGNAL", cfg.StopSignal) {
		fmt.Fprintf(b, "STOPSIGNAL %s\n", quoteWord(cfg.StopSignal, esc))
	}
	if hc := cfg.Healthcheck; hc != nil && len(hc.Test) > 0 {
		var flags string
		for _, f := range []struct {
			name string
			d    interface{ String() string }
			set  bool
		}{
			{"interval", hc.Interval, hc.Interval != 0},
			{"timeout", hc.Timeout, hc.Timeout != 0},
			{"start-period", hc.StartPeriod, hc.StartPeriod != 0},
		} {
			if f.set {
				flags += fmt.Sprintf("--%s=%s ", f.name, f.d)
			}
		}
		if hc.Retries != 0 {
			flags += fmt.Sprintf("--retries=%d ", hc.Retries)
		}
		switch {
		case hc.Test[0] == "NONE":
			b.WriteString("HEALTHCHECK NONE\n")
		case hc.Test[0] == "CMD" && len(hc.Test) > 1:
			fmt.Fprintf(b, "HEALTHCHECK %sCMD %s\n", flags, jsonArray(hc.Test[1:]))
		case hc.Test[0] == "CMD-SHELL" && len(hc.Test) == 2 && oneLine("HEALTHCHECK", hc.Test[1]):
			fmt.Fprintf(b, "HEALTHCHECK %sCMD %s\n", flags, hc.Test[1])
		default:
			notes = append(notes, fmt.Sprintf("healthcheck %q cannot be written; it is left out", hc.Test))
		}
	}
	if len(cfg.Shell) > 0 {
		fmt.Fprintf(b, "SHELL %s\n", jsonArray(cfg.Shell))
	}
	if len(cfg.OnBuild) > 0 {
		notes = append(notes, fmt.Sprintf("ONBUILD triggers %q are not repeated: they ran in the builder", cfg.OnBuild))
	}
	if cfg.WorkingDir != "" && oneLine("WORKDIR", cfg.WorkingDir) {
		fmt.Fprintf(b, "WORKDIR %s\n", quoteWord(cfg.WorkingDir, esc))
	}
	if cfg.User != "" && oneLine("USER", cfg.User) {
		fmt.Fprintf(b, "USER %s\n", quoteWord(cfg.User, esc))
	}
	if len(cfg.Entrypoint) > 0 {
		fmt.Fprintf(b, "ENTRYPOINT %s\n", jsonArray(cfg.Entrypoint))
	}
	if len(cfg.Cmd) > 0 {
		fmt.Fprintf(b, "CMD %s\n", jsonArray(cfg.Cmd))
	}
	return notes
}
