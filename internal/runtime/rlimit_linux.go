package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitResources = map[string]int{
	"RLIMIT_NOFILE":  unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":   unix.RLIMIT_NPROC,
	"RLIMIT_CORE":    unix.RLIMIT_CORE,
	"RLIMIT_STACK":   unix.RLIMIT_STACK,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
}

// FitRlimits returns spec, or a copy of it whose rlimits are lowered to this process's hard
// limits when those are lower and this process lacks CAP_SYS_RESOURCE to raise them (as in
// a container started with a small nofile limit). runc would fail "operation not permitted"
// otherwise. The caller's spec is never modified.
func FitRlimits(spec *specs.Spec) *specs.Spec {
	if spec.Process == nil || len(spec.Process.Rlimits) == 0 || hasCapSysResource() {
		return spec
	}
	var fitted []specs.POSIXRlimit
	changed := false
	for _, rl := range spec.Process.Rlimits {
		if res, ok := rlimitResources[rl.Type]; ok {
			var cur unix.Rlimit
			if unix.Getrlimit(res, &cur) == nil && cur.Max != unix.RLIM_INFINITY && rl.Hard > cur.Max {
				rl.Hard = cur.Max
				rl.Soft = min(rl.Soft, cur.Max)
				changed = true
			}
		}
		fitted = append(fitted, rl)
	}
	if !changed {
		return spec
	}
	s := *spec
	p := *spec.Process
	p.Rlimits = fitted
	s.Process = &p
	return &s
}

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	const bit = unix.CAP_SYS_RESOURCE
	return data[bit/32].Effective&(1<<(bit%32)) != 0
}
