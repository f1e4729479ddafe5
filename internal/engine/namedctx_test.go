package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/image"
)

// namedContexts parses --build-context flags as the CLI does.
func namedContexts(t *testing.T, flags ...string) map[string]image.NamedContext {
	t.Helper()
	out := map[string]image.NamedContext{}
	for _, f := range flags {
		name, nc, err := image.ParseNamedContext(f)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = nc
	}
	return out
}

// writeLayout writes an OCI layout holding one image, tagged tag, whose only
// layer holds files.
func writeLayout(t *testing.T, files map[string][]byte, tag string) string {
	t.Helper()
	l, err := crane.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNamedContexts(t *testing.T) {
	st := newStore(t)
	dirCtx := writeContext(t, map[string]string{
		"a.txt":         "from-dir\n",
		"secret.txt":    "ignored\n",
		".dockerignore": "secret.txt\n",
	})
	lay := writeLayout(t, map[string][]byte{"hello.txt": []byte("from-layout\n")}, "v1")
	opts := engine.Options{NamedContexts: namedContexts(t,
		"base=docker-image://busybox",
		"dirctx="+dirCtx,
		"lay=oci-layout://"+lay+":v1",
		"replaced=oci-layout://"+lay+":v1",
	)}
	files := map[string]string{
		"Dockerfile": `FROM busybox AS replaced
RUN echo the replaced stage ran > /bad
FROM base
COPY --from=dirctx a.txt /a.txt
COPY --from=lay /hello.txt /hello.txt
COPY --from=replaced /hello.txt /replaced.txt
RUN --mount=from=dirctx,target=/m cat /m/a.txt > /m-a.txt
RUN --mount=from=lay,target=/l cat /l/hello.txt > /l-hello.txt
`,
	}
	ctxDir := writeContext(t, files)
	res, err := buildIn(t, st, ctxDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fsOf(t, res.Image)
	for p, want := range map[string]string{
		"a.txt": "from-dir\n", "hello.txt": "from-layout\n", "replaced.txt": "from-layout\n",
		"m-a.txt": "from-dir\n", "l-hello.txt": "from-layout\n",
	} {
		if got := fileData(t, fsys, p); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if _, ok := fsys["bin/busybox"]; !ok {
		t.Errorf("FROM base (docker-image://busybox) did not give busybox's filesystem")
	}

	// The local directory is keyed by content: a change is seen, not cached.
	if err := os.WriteFile(filepath.Join(dirCtx, "a.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = buildIn(t, st, ctxDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	fsys = fsOf(t, res.Image)
	for _, p := range []string{"a.txt", "m-a.txt"} {
		if got := fileData(t, fsys, p); got != "changed\n" {
			t.Errorf("after the named context changed, /%s = %q, want %q", p, got, "changed\n")
		}
	}
}

func TestNamedContextLayoutAsBase(t *testing.T) {
	st := newStore(t)
	lay := writeLayout(t, map[string][]byte{"hello.txt": []byte("layout-base\n")}, "latest")
	res := mustBuild(t, st, map[string]string{"Dockerfile": "FROM lay\nCOPY Dockerfile /df\n"},
		engine.Options{NamedContexts: namedContexts(t, "lay=oci-layout://"+lay)})
	fsys := fsOf(t, res.Image)
	if got := fileData(t, fsys, "hello.txt"); got != "layout-base\n" {
		t.Errorf("/hello.txt = %q, want the layout image's", got)
	}
}

func TestNamedContextErrors(t *testing.T) {
	st := newStore(t)
	dirCtx := writeContext(t, map[string]string{"secret.txt": "x", ".dockerignore": "secret.txt\n"})
	lay := writeLayout(t, map[string][]byte{"f": []byte("x")}, "v1")
	for _, tc := range []struct {
		name, dockerfile, flag, want string
	}{
		{"dockerignore of the named dir", "FROM busybox\nCOPY --from=d secret.txt /s\n", "d=" + dirCtx, "excluded by .dockerignore"},
		{"dir as FROM", "FROM d\n", "d=" + dirCtx, "cannot be a FROM base"},
		{"missing layout tag", "FROM busybox\nCOPY --from=l /f /f\n", "l=oci-layout://" + lay + ":nope", "has no image tag nope"},
		{"outside the named dir", "FROM busybox\nCOPY --from=d ../secret.txt /s\n", "d=" + dirCtx, "outside the build context"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := buildErr(t, st, map[string]string{"Dockerfile": tc.dockerfile}, engine.Options{NamedContexts: namedContexts(t, tc.flag)})
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
