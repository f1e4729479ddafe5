package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

func TestCacheMountFromSeeds(t *testing.T) {
	st := newStore(t)
	dirCtx := writeContext(t, map[string]string{"data/f": "from-dir\n"})
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS seed
RUN mkdir -p /data && echo seeded > /data/f && chown 65534 /data/f
FROM busybox
RUN --mount=type=cache,id=c1,from=seed,source=/data,target=/c cat /c/f > /got && stat -c %u /c/f > /owner && echo more > /c/g
RUN --mount=type=cache,id=c1,from=seed,source=/data,target=/c ls /c > /list
RUN --mount=type=cache,id=c1,target=/c ls /c > /plain
RUN --mount=type=cache,id=c2,from=d,source=data,target=/c cat /c/f > /fromdir
`,
	}, engine.Options{NamedContexts: namedContexts(t, "d="+dirCtx)})
	fsys := fsOf(t, res.Image)
	for p, want := range map[string]string{
		"got": "seeded\n", "owner": "65534\n", "list": "f\ng\n", "plain": "", "fromdir": "from-dir\n",
	} {
		if got := fileData(t, fsys, p); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if _, ok := fsys["c"]; ok {
		t.Errorf("the cache mount point /c is in the image")
	}
}

// TestCacheMountSourceStaysInRoot: source= names a path inside the from=
// stage; a link there to a host path is resolved in the stage's root, never
// on the host.
func TestCacheMountSourceStaysInRoot(t *testing.T) {
	st := newStore(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hostfile"), []byte("HOST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, source string }{
		{"link", "/lnk"},
		{"dotdot", "/../../../../../../../.." + host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := buildIn(t, st, writeContext(t, map[string]string{
				"Dockerfile": `FROM busybox AS seed
RUN ln -s ` + host + ` /lnk
FROM busybox
RUN --mount=type=cache,id=` + tc.name + `,from=seed,source=` + tc.source + `,target=/c cat /c/hostfile > /got || true
`,
			}), engine.Options{})
			if err != nil {
				if strings.Contains(err.Error(), "HOST") {
					t.Fatalf("error shows the host file: %v", err)
				}
				return // the path does not exist in the stage: refused
			}
			if got := fileData(t, fsOf(t, res.Image), "got"); strings.Contains(got, "HOST") {
				t.Errorf("the cache was seeded from the host's %s", host)
			}
		})
	}
}
