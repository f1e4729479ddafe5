package runtime

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestFitRlimits(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	t.Run("within limits is unchanged", func(t *testing.T) {
		s := mustSpec(t, "/r", Process{})
		s.Process.Rlimits[0].Hard, s.Process.Rlimits[0].Soft = cur.Max, cur.Max
		if got := FitRlimits(s); got != s {
			t.Error("spec copied although it fits")
		}
	})
	t.Run("above the hard limit", func(t *testing.T) {
		if cur.Max == unix.RLIM_INFINITY {
			t.Skip("nofile hard limit is unlimited here")
		}
		s := mustSpec(t, "/r", Process{})
		s.Process.Rlimits[0].Hard, s.Process.Rlimits[0].Soft = cur.Max+1, cur.Max+1
		got := FitRlimits(s)
		if s.Process.Rlimits[0].Hard != cur.Max+1 {
			t.Fatal("caller's spec was modified")
		}
		want := cur.Max + 1 // CAP_SYS_RESOURCE may raise it
		if !hasCapSysResource() {
			want = cur.Max
		}
		if rl := got.Process.Rlimits[0]; rl.Hard != want || rl.Soft != want {
			t.Errorf("rlimit = %+v, want hard=soft=%d", rl, want)
		}
	})
}
