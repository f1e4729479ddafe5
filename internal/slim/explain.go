package slim

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Chain is why p is in the closure: its reason, then the reason of the path
// that brought it in, and so on up to a root (the entrypoint, an included
// path, the image's config, a probe), e.g.
// "DT_NEEDED of /usr/bin/curl ← script command of /app/run.sh ← entrypoint".
// A path not in the closure has an empty chain.
func (r *Result) Chain(p string) string {
	byPath := make(map[string]*Entry, len(r.Entries))
	for i := range r.Entries {
		byPath[r.Entries[i].Path] = &r.Entries[i]
	}
	var steps []string
	seen := map[string]bool{}
	for cur := p; cur != "" && !seen[cur]; {
		seen[cur] = true
		e, ok := byPath[cur]
		if !ok {
			break
		}
		step := e.Why
		if e.By != "" {
			step += " of " + e.By
		}
		if e.Detail != "" {
			step += " (" + e.Detail + ")"
		}
		steps = append(steps, step)
		cur = e.By
	}
	return strings.Join(steps, " ← ")
}

// WriteExplain writes one line per kept path: its kind, the path and its
// chain; then the notes.
func WriteExplain(w io.Writer, r *Result) error {
	for _, e := range r.Entries {
		if _, err := fmt.Fprintf(w, "%-7s %s\t%s\n", e.Kind, e.Path, r.Chain(e.Path)); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	return nil
}

// WriteDropped writes the paths of the original image that the slim one
// does not have, one a line, sorted.
func WriteDropped(w io.Writer, rep *Report) error {
	d := append([]string{}, rep.Dropped...)
	sort.Strings(d)
	for _, p := range d {
		if _, err := fmt.Fprintln(w, p); err != nil {
			return err
		}
	}
	return nil
}
