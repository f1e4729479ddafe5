package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/image"
	"github.com/slimbuild/slimbuild/internal/regcache"
	"github.com/slimbuild/slimbuild/internal/regtest"
	"github.com/slimbuild/slimbuild/internal/store"
)

// fleetMaxBytes bounds what runner B may download for hello-c: the final image's
// own layer (the static binary) and the cache's manifest and config, never the
// builder stage.
const fleetMaxBytes = 3 << 20

// TestFleet simulates two CI runners sharing one registry cache (issue 10): runner
// A builds examples/hello-c with --cache-to mode=max on the real CNCF registry;
// runner B, with a fresh store holding only the imported bases, builds it with
// --cache-from through a proxy that counts every byte B receives. Every step of B
// is CACHED (no compiler runs), B makes the same image as A, and B downloads at most
// fleetMaxBytes.
func TestFleet(t *testing.T) {
	rootA := bases(t)
	rootB := bases(t)
	reg := regtest.Start(t, regtest.Options{})
	example := filepath.Join("..", "..", "examples", "hello-c")
	cacheRef := reg + "/fleet/hello:buildcache"

	outA, errA, err := slimbuild(t, rootA, "build", "--progress", "plain", "-t", "hello:a",
		"--cache-to", "type=registry,ref="+cacheRef+",mode=max", example)
	if err != nil {
		t.Fatalf("runner A: %v\n%s", err, errA)
	}
	if !regexp.MustCompile(`cache .*: exported \d+ steps \(mode=max\)`).MatchString(errA) {
		t.Errorf("runner A does not report the cache export:\n%s", errA)
	}

	proxy := regtest.NewProxy(t, reg, regtest.Flaky{})
	outB, errB, err := slimbuild(t, rootB, "build", "--progress", "plain", "-t", "hello:b",
		"--cache-from", "type=registry,ref="+proxy.Host+"/fleet/hello:buildcache", example)
	if err != nil {
		t.Fatalf("runner B: %v\n%s", err, errB)
	}
	fetched := proxy.Served()
	fmt.Fprintf(os.Stderr, "TestFleet: runner B fetched %d bytes from the registry in %d requests (bound %d)\n", fetched, proxy.Requests(), fleetMaxBytes)
	t.Logf("runner B fetched %d bytes in %d requests; its output:\n%s", fetched, proxy.Requests(), errB)

	fsSteps := 0
	for _, line := range strings.Split(errB, "\n") {
		if !strings.HasPrefix(line, "[") {
			continue
		}
		if m := regexp.MustCompile(`^\[\S+ \d+/\d+\] (RUN|COPY|ADD|WORKDIR)\b`).FindString(line); m == "" {
			continue
		}
		fsSteps++
		if !strings.HasSuffix(line, " CACHED") {
			t.Errorf("runner B ran a step: %q", line)
		}
	}
	if fsSteps != 4 {
		t.Errorf("runner B reported %d filesystem steps, want 4 (WORKDIR, COPY, RUN, COPY --from):\n%s", fsSteps, errB)
	}
	if !strings.Contains(errB, "stages left in the registry cache (not downloaded, not analysed): 1") {
		t.Errorf("runner B's summary does not say the compile stage stayed in the registry:\n%s", errB)
	}
	if strings.Contains(errB, "#compile") {
		t.Errorf("the compile stage printed output on runner B, so it ran:\n%s", errB)
	}
	if last(outA) != last(outB) {
		t.Errorf("runner A made %s, runner B %s: the same build should give the same image", last(outA), last(outB))
	}
	if fetched > fleetMaxBytes {
		t.Errorf("runner B fetched %d bytes, want at most %d", fetched, fleetMaxBytes)
	}

	// Only the final image's layer came over: none of the compile stage's.
	c, _, err := regcache.Open(context.Background(), &image.Registry{}, cacheRef)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(rootB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	have := 0
	for _, s := range c.Steps() {
		if s.Layer != nil && st.HasBlob(s.Layer.Digest) {
			have++
		}
	}
	if have != 1 {
		t.Errorf("runner B holds %d of the cache's layers, want 1 (the final image's COPY --from)", have)
	}
	st.Close()

	out, _, err := slimbuild(t, rootB, "run", "hello:b")
	if err != nil || !strings.Contains(out, "Hello from a lean image") {
		t.Errorf("run hello:b on runner B: %v, output %q", err, out)
	}
}

// last is the last line of s.
func last(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
