package slim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// maxScript bounds how much of a shell script is read and parsed.
const maxScript = 1 << 20

// isShell reports whether an interpreter's name is a shell whose scripts
// mvdan.cc/sh parses (POSIX sh and bash dialects).
func isShell(name string) bool {
	switch path.Base(name) {
	case "sh", "bash", "dash", "ash", "ksh", "mksh":
		return true
	}
	return false
}

// wrappers are commands that run their first operand as a command.
var wrappers = map[string]bool{
	"exec": true, "command": true, "env": true, "nohup": true, "nice": true,
	"time": true, "setsid": true, "xargs": true, "timeout": true,
}

// walkArgs follows the entrypoint's arguments: a shell's "-c STRING" or
// script operand is parsed; for any other program, an argument naming a file of
// the image (absolute, or relative to the working directory, as
// "python3 app.py" does) is kept and walked.
func (w *walker) walkArgs(prog string, args []string, wd string) error {
	if wd == "" || !path.IsAbs(wd) {
		wd = "/"
	}
	if isShell(w.shellOf(prog)) {
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "-c" && i+1 < len(args) {
				return w.walkShell(strings.NewReader(args[i+1]), "-c of "+prog, prog)
			}
			if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+") {
				continue
			}
			p := a
			if !path.IsAbs(p) {
				p = path.Join(wd, p)
			}
			final, err := w.add(p, WhyArgument, prog)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					w.notes = append(w.notes, fmt.Sprintf("script %s of %s not found in the image", a, prog))
					return nil
				}
				return err
			}
			return w.walkShellFile(final)
		}
		return nil
	}
	for _, a := range args {
		if a == "" || strings.HasPrefix(a, "-") || strings.ContainsAny(a, "\x00") {
			continue
		}
		p := a
		if !path.IsAbs(p) {
			p = path.Join(wd, p)
		}
		if _, err := w.resolve(p, nil); err != nil {
			continue
		}
		if _, err := w.add(p, WhyArgument, prog); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// shellOf returns the name prog runs as: the base name of the path, or of
// the last symlink on the way when it leads to busybox (an applet is named by
// its link).
func (w *walker) shellOf(prog string) string {
	name := path.Base(prog)
	_, _ = w.resolve(prog, func(at, target string) {
		if path.Base(target) != "busybox" {
			name = path.Base(target)
		}
	})
	return name
}

// walkShellFile parses the shell script at p (resolved, inside the image).
func (w *walker) walkShellFile(p string) error {
	if w.scripts[p] {
		return nil
	}
	w.scripts[p] = true
	f, err := w.open(p)
	if err != nil {
		return fmt.Errorf("reading script %s: %w", p, err)
	}
	defer f.Close()
	return w.walkShell(io.LimitReader(f, maxScript), p, p)
}

// walkShell parses a shell program (named name in errors and notes, kept
// because of by) and adds the commands it calls, found in the image's PATH,
// the literal absolute paths it names, and the scripts it sources, parsed in
// turn. Words built at run time (variables, globs, command substitutions) are
// not guessed at; a program that cannot be parsed is noted, not an error.
func (w *walker) walkShell(r io.Reader, name, by string) error {
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(r, name)
	if err != nil {
		w.notes = append(w.notes, fmt.Sprintf("cannot parse shell script %s: %v", name, err))
		return nil
	}
	funcs := map[string]bool{}
	syntax.Walk(file, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok {
			funcs[fd.Name.Value] = true
		}
		return true
	})
	var cmds, paths, sourced []string
	syntax.Walk(file, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			words := make([]string, len(n.Args))
			for i, a := range n.Args {
				words[i], _ = literal(a)
			}
			for i := 0; i < len(words); i++ {
				c := words[i]
				if c == "" || funcs[c] {
					break
				}
				if c == "." || c == "source" {
					if i+1 < len(words) && path.IsAbs(words[i+1]) {
						sourced = append(sourced, words[i+1])
					}
					break
				}
				cmds = append(cmds, c)
				if !wrappers[c] && path.Base(c) != "env" {
					break
				}
				// The wrapped command follows the wrapper's options,
				// assignments and (for timeout) duration.
				for i+1 < len(words) && (strings.HasPrefix(words[i+1], "-") || strings.Contains(words[i+1], "=") ||
					(c == "timeout" && strings.Trim(words[i+1], "0123456789.smhd") == "")) {
					i++
				}
			}
		case *syntax.Word:
			if s, ok := literal(n); ok && path.IsAbs(s) {
				paths = append(paths, s)
			}
		}
		return true
	})
	for _, c := range cmds {
		prog, err := w.findProgram(c, "/")
		if err != nil {
			continue // a builtin, or a program the script does not reach here
		}
		if _, err := w.add(prog, WhyScriptCommand, by); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("command %q of script %s: %w", c, name, err)
		}
	}
	for _, p := range paths {
		if _, err := w.resolve(p, nil); err != nil {
			continue // written by the script, or a path it only tests for
		}
		if _, err := w.add(p, WhyScriptPath, by); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("path %q of script %s: %w", p, name, err)
		}
	}
	for _, p := range sourced {
		final, err := w.resolve(p, nil)
		if err != nil {
			continue
		}
		if fi, err := os.Lstat(w.host(final)); err == nil && fi.Mode().IsRegular() {
			if err := w.walkShellFile(final); err != nil {
				return err
			}
		}
	}
	return nil
}

// literal returns the value of a word that holds no expansion: plain text,
// single quotes, and double quotes around plain text.
func literal(word *syntax.Word) (string, bool) {
	var b strings.Builder
	for _, part := range word.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(p.Value, "*?[") {
				return "", false
			}
			b.WriteString(strings.ReplaceAll(p.Value, "\\", ""))
		case *syntax.SglQuoted:
			if p.Dollar {
				return "", false
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return "", false
				}
				b.WriteString(l.Value)
			}
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}
