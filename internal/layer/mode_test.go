package layer

import (
	"io/fs"
	"testing"
)

func TestModeBits(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode fs.FileMode
		bits uint32
	}{
		{"plain", 0o644, 0o644},
		{"setuid", 0o755 | fs.ModeSetuid, 0o4755},
		{"setgid", 0o2750&0o777 | fs.ModeSetgid, 0o2750},
		{"sticky", 0o777 | fs.ModeSticky, 0o1777},
		{"all", 0o7777&0o777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky, 0o7777},
		{"none", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnixMode(tc.mode); got != tc.bits {
				t.Errorf("UnixMode(%v) = %#o, want %#o", tc.mode, got, tc.bits)
			}
			if got := FileMode(int64(tc.bits)); got != tc.mode {
				t.Errorf("FileMode(%#o) = %v, want %v", tc.bits, got, tc.mode)
			}
		})
	}
	// The type is not a mode bit: a directory's mode or a tar header's
	// type bits (0o100000 for a regular file) do not leak through.
	if got := UnixMode(fs.ModeDir | 0o755); got != 0o755 {
		t.Errorf("UnixMode(dir 0755) = %#o", got)
	}
	if got := FileMode(0o104755); got != 0o755|fs.ModeSetuid {
		t.Errorf("FileMode(0o104755) = %v", got)
	}
}
