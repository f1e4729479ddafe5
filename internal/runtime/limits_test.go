package runtime

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpecLimits: Process.Rlimits replace the default of their type and add
// the others; ShmSize sets /dev/shm's size, 64MiB when 0.
func TestSpecLimits(t *testing.T) {
	tests := []struct {
		name    string
		p       Process
		rlimits []specs.POSIXRlimit
		shm     string
	}{
		{"defaults", Process{}, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}, "size=65536k"},
		{"nofile replaced, core added, shm 128MiB",
			Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_CORE"}, {Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}}, ShmSize: 128 << 20},
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}, {Type: "RLIMIT_CORE"}}, "size=134217728"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Args = []string{"/bin/true"}
			s, err := Spec("/rootfs", tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.rlimits, s.Process.Rlimits); d != "" {
				t.Errorf("rlimits (-want +got):\n%s", d)
			}
			i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
			if i < 0 || !slices.Contains(s.Mounts[i].Options, tt.shm) {
				t.Errorf("/dev/shm mount %+v, want option %s", s.Mounts, tt.shm)
			}
		})
	}
}
