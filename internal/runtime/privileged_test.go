package runtime

import (
	"slices"
	"testing"
)

// TestSpecPrivileged: only a Privileged process loses seccomp, the masked and
// read-only paths and the read-only sysfs, and gains capabilities beyond the
// default set; the default spec is untouched by the option's existence.
func TestSpecPrivileged(t *testing.T) {
	plain, err := Spec("/rootfs", Process{Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := Spec("/rootfs", Process{Args: []string{"true"}, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Linux.Seccomp == nil || len(plain.Linux.MaskedPaths) == 0 || len(plain.Linux.ReadonlyPaths) == 0 {
		t.Fatal("the default spec lost its sandbox")
	}
	if !slices.Equal(plain.Process.Capabilities.Bounding, defaultCapabilities) {
		t.Errorf("default capabilities = %v", plain.Process.Capabilities.Bounding)
	}
	if priv.Linux.Seccomp != nil || len(priv.Linux.MaskedPaths) != 0 || len(priv.Linux.ReadonlyPaths) != 0 {
		t.Error("privileged spec keeps seccomp or masked/read-only paths")
	}
	if !slices.Contains(priv.Process.Capabilities.Effective, "CAP_SYS_ADMIN") || len(priv.Process.Capabilities.Bounding) <= len(defaultCapabilities) {
		t.Errorf("privileged capabilities = %v", priv.Process.Capabilities.Bounding)
	}
	for _, m := range priv.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("%s is read-only in a privileged spec", m.Destination)
		}
	}
}
