package engine_test

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/store"
)

// TestStageLayers: every stage built lists its layers, bottom first, as trees a reader can
// open without the stage's image: the discarded builder's top layer holds what its RUN
// wrote, and the target's layers are named by its diffIDs.
func TestStageLayers(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS builder
RUN echo x > /builder-marker
FROM busybox
COPY --from=builder /builder-marker /copied
`,
	}, engine.Options{})
	if len(res.Stages) != 2 {
		t.Fatalf("stages = %+v, want 2", res.Stages)
	}
	builder, target := res.Stages[0], res.Stages[1]
	n := len(target.Layers)
	if n < 2 || len(builder.Layers) != n {
		t.Fatalf("builder has %d layers, target %d; want the same number, 2 or more", len(builder.Layers), n)
	}
	for i := 0; i < n-1; i++ { // busybox's layers
		if builder.Layers[i].ID != target.Layers[i].ID {
			t.Errorf("base layer %d has two IDs: %s and %s", i, builder.Layers[i].ID, target.Layers[i].ID)
		}
	}
	if names := tarNames(t, builder.Layers[len(builder.Layers)-1]); !contains(names, "builder-marker") {
		t.Errorf("builder's top layer holds %v, want builder-marker", names)
	}
	if names := tarNames(t, target.Layers[len(target.Layers)-1]); !contains(names, "copied") || contains(names, "builder-marker") {
		t.Errorf("target's top layer holds %v, want copied only", names)
	}
	cfg, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range target.Layers {
		if l.ID != cfg.RootFS.DiffIDs[i].String() {
			t.Errorf("target layer %d: ID %s, want diffID %s", i, l.ID, cfg.RootFS.DiffIDs[i])
		}
	}
}

func tarNames(t *testing.T, l store.LayerTree) []string {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatalf("opening layer %s: %v", l.ID, err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("reading layer %s: %v", l.ID, err)
		}
		names = append(names, strings.TrimPrefix(h.Name, "./"))
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if strings.TrimSuffix(x, "/") == v {
			return true
		}
	}
	return false
}
