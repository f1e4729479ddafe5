package snapshot

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Mount describes one mount, like containerd's mount.Mount. The snapshot package only
// describes mounts; MountAll / Unmount perform them.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// portableOverlayOptions keep an upper directory a self-contained diff that can be
// reused as a lower elsewhere (see the package documentation).
var portableOverlayOptions = []string{"index=off", "redirect_dir=off", "metacopy=off"}

// Volatile is the option that spares a writable overlay the syncs of its upper
// filesystem: at unmount, on syncfs and on every fsync its processes make (see the
// package documentation). Overlay adds it; Prepare drops it on a kernel older than
// 5.10, which does not know it.
const Volatile = "volatile"

// Overlay describes a writable, volatile overlay of lowers (topmost first) with upper
// and work dirs. With no lowers it is a bind mount of upper.
func Overlay(lowers []string, upper, work string) []Mount {
	lowers = distinct(lowers)
	if len(lowers) == 0 {
		return []Mount{{Type: "bind", Source: upper, Options: []string{"rbind", "rw"}}}
	}
	opts := []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + upper,
		"workdir=" + work,
	}
	opts = append(opts, portableOverlayOptions...)
	opts = append(opts, Volatile)
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// withoutVolatile is ms with the Volatile option taken out.
func withoutVolatile(ms []Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == Volatile })
		out[i] = m
	}
	return out
}

// ReadOnly describes a read-only view of lowers (topmost first): a read-only bind for one,
// a read-only overlay for several.
func ReadOnly(lowers []string) []Mount {
	lowers = distinct(lowers)
	switch len(lowers) {
	case 0:
		return nil
	case 1:
		return []Mount{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":")}}}
}

// distinct drops the lower occurrences of a directory listed twice (two
// identical layers, such as the same COPY done twice): overlayfs refuses a
// repeated lowerdir (ELOOP), and the upper occurrence alone gives the same view,
// since it sets again every path the lower one set.
func distinct(lowers []string) []string {
	seen := make(map[string]bool, len(lowers))
	out := make([]string, 0, len(lowers))
	for _, l := range lowers {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// ErrNoLayers is returned by MountAll for an empty mount list.
var ErrNoLayers = errors.New("no mounts to perform")

// MountAll mounts ms onto target in order.
func MountAll(ms []Mount, target string) error {
	if len(ms) == 0 {
		return fmt.Errorf("mounting on %q: %w", target, ErrNoLayers)
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("mounting on %q: %w", target, err)
	}
	for i, m := range ms {
		if err := mountOne(m, abs); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = unmountOnce(abs) // roll back only what this call stacked
			}
			return fmt.Errorf("mounting %s %q on %q: %w", m.Type, m.Source, target, err)
		}
	}
	return nil
}
