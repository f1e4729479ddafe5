package source

import (
	"io/fs"
	"testing"
)

// TestParseChmodArg: --chmod is octal (up to 07777) or symbolic; a value that
// looks numeric but is not octal is an error, not a symbolic mode.
func TestParseChmodArg(t *testing.T) {
	for _, tc := range []struct {
		in       string
		octal    bool
		symbolic bool
		apply    fs.FileMode // what the symbolic mode makes of 0644
		wantErr  bool
	}{
		{in: "0755", octal: true},
		{in: "4755", octal: true},
		{in: "u+x", symbolic: true, apply: 0o744},
		{in: "go-rwx", symbolic: true, apply: 0o600},
		{in: "a=rX", symbolic: true, apply: 0o444},
		{in: "u=rw,g=r,o=", symbolic: true, apply: 0o640},
		{in: "888", wantErr: true},
		{in: "17777", wantErr: true},
		{in: "u+q", wantErr: true},
		{in: "rwxr-xr-x", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ch, err := ParseChmod(tc.in)
			octal, set := ch.Set, ch.Symbolic
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if octal != tc.octal || (set != nil) != tc.symbolic {
				t.Fatalf("octal %v symbolic %v, want %v %v", octal, set != nil, tc.octal, tc.symbolic)
			}
			if set != nil {
				if got := set.Apply(0o644); got != tc.apply {
					t.Errorf("Apply(0644) = %o, want %o", got, tc.apply)
				}
			}
		})
	}
}
