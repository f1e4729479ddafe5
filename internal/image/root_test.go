package image

import (
	"os"
	"testing"
)

// requireRoot skips a test that unpacks layers with their owners (chown to
// other users) when the process is not root. CI runs as root, where it never
// skips.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking layers sets their owners; this process is not root")
	}
}
