package report

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownCategory is wrapped by the errors that name a category that does not exist.
var ErrUnknownCategory = errors.New("unknown attack-surface category")

// GateExitCode is the exit status of a command whose image fails a gate.
const GateExitCode = 3

// Gate is a policy an image must meet: at most MaxSize bytes uncompressed (0: no limit),
// and nothing in any of the Forbid categories.
type Gate struct {
	MaxSize int64
	Forbid  []string
}

// Violation is one way a report fails a gate, with the paths that cause it.
type Violation struct {
	Category string   `json:"category"` // a Category, or "size"
	Message  string   `json:"message"`
	Paths    []string `json:"paths"`
}

// ValidCategories returns the category names Gate accepts, comma separated.
func ValidCategories() string {
	names := make([]string, len(Categories))
	for i, c := range Categories {
		names[i] = string(c)
	}
	return strings.Join(names, ",")
}

func validCategory(s string) bool {
	for _, c := range Categories {
		if string(c) == s {
			return true
		}
	}
	return false
}

// ParseForbid splits a comma-separated list of categories ("compilers,shells"), checking
// every name. Spaces around names and empty items are ignored; duplicates are dropped.
func ParseForbid(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || seen[s] {
			continue
		}
		if !validCategory(s) {
			return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownCategory, s, ValidCategories())
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// Validate checks the gate's settings.
func (g Gate) Validate() error {
	if g.MaxSize < 0 {
		return fmt.Errorf("max size %d is negative", g.MaxSize)
	}
	for _, s := range g.Forbid {
		if !validCategory(s) {
			return fmt.Errorf("%w %q (valid: %s)", ErrUnknownCategory, s, ValidCategories())
		}
	}
	return nil
}

// Check returns how r fails the gate, nil if it passes. The gate fails closed: a category
// name that is not valid is itself reported as a violation.
func (g Gate) Check(r *Report) []Violation {
	var out []Violation
	if g.MaxSize > 0 && r.UncompressedSize > g.MaxSize {
		v := Violation{Category: "size", Paths: []string{},
			Message: fmt.Sprintf("uncompressed size %s (%s bytes) exceeds the maximum %s (%s bytes); largest files listed",
				HumanSize(r.UncompressedSize), Count(int(r.UncompressedSize)), HumanSize(g.MaxSize), Count(int(g.MaxSize)))}
		for _, f := range r.LargestFiles {
			v.Paths = append(v.Paths, f.Path)
		}
		out = append(out, v)
	}
	for _, s := range g.Forbid {
		if !validCategory(s) {
			out = append(out, Violation{Category: s, Paths: []string{},
				Message: fmt.Sprintf("%v %q (valid: %s)", ErrUnknownCategory, s, ValidCategories())})
			continue
		}
		f := r.Finding(Category(s))
		if !f.Present() {
			continue
		}
		v := Violation{Category: s, Paths: f.Paths}
		switch Category(s) {
		case Root:
			v.Message = "image runs as root: " + f.Detail
		case Compilers, PackageManagers, Shells:
			v.Message = fmt.Sprintf("forbidden %s present: %s", s, strings.Join(f.Names, ", "))
		default:
			v.Message = fmt.Sprintf("forbidden %s present: %s", s, countNoun(f.Count, f.Category))
		}
		out = append(out, v)
	}
	return out
}

// GateError is the error of a command whose image failed a gate. Its message lists every
// violation with its paths (at most MaxListedPaths each); ExitCode is GateExitCode.
type GateError struct {
	Violations []Violation
}

// MaxListedPaths is how many paths GateError's message lists per violation.
const MaxListedPaths = 20

func (e *GateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image fails the gate (%d violations)", len(e.Violations))
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "\n  %s: %s", v.Category, v.Message)
		for i, p := range v.Paths {
			if i == MaxListedPaths {
				fmt.Fprintf(&b, "\n    … and %s more", Count(len(v.Paths)-i))
				break
			}
			fmt.Fprintf(&b, "\n    %s", p)
		}
	}
	return b.String()
}

// ExitCode is the process exit status for a failed gate.
func (e *GateError) ExitCode() int { return GateExitCode }

// ParseGate builds a Gate from the --max-size and --forbid flag values ("" for none).
func ParseGate(maxSize, forbid string) (Gate, error) {
	var g Gate
	if maxSize != "" {
		n, err := ParseSize(maxSize)
		if err != nil {
			return g, fmt.Errorf("--max-size: %w", err)
		}
		g.MaxSize = n
	}
	f, err := ParseForbid(forbid)
	if err != nil {
		return g, fmt.Errorf("--forbid: %w", err)
	}
	g.Forbid = f
	return g, nil
}
