package engine_test

import (
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestNetworkNoneHasLoopback: without network a RUN still has lo, up, as in
// BuildKit, so that programs can talk to themselves over 127.0.0.1.
func TestNetworkNoneHasLoopback(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN ip -o link show > /links && ip -o addr show lo > /lo\n",
	}, engine.Options{Network: "none"})
	fs := fsOf(t, res.Image)
	links := fileData(t, fs, "links")
	if strings.Count(strings.TrimSpace(links), "\n") != 0 || !strings.Contains(links, "lo:") {
		t.Errorf("interfaces = %q, want lo alone", links)
	}
	if !strings.Contains(links, "UP") || !strings.Contains(fileData(t, fs, "lo"), "127.0.0.1") {
		t.Errorf("lo is not up with 127.0.0.1: %q %q", links, fileData(t, fs, "lo"))
	}
	assertClean(t, st)
}
