package runtime

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestWithDefaultPath(t *testing.T) {
	for _, tc := range []struct{ env, want []string }{
		{nil, []string{DefaultPath}},
		{[]string{"A=1"}, []string{DefaultPath, "A=1"}},
		{[]string{"A=1", "PATH=/x"}, []string{"A=1", "PATH=/x"}},
		{[]string{"PATHX=1"}, []string{DefaultPath, "PATHX=1"}},
	} {
		if got := WithDefaultPath(tc.env); !slices.Equal(got, tc.want) {
			t.Errorf("WithDefaultPath(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// An image with no ENTRYPOINT, no CMD and no arguments has nothing to run:
// refused before anything is made.
func TestRunImageNoCommand(t *testing.T) {
	dir := t.TempDir()
	_, err := RunImage(context.Background(), ImageRun{Rootfs: dir, Dir: dir, Config: ImageConfig{Env: []string{"A=1"}}})
	if !errors.Is(err, ErrNoCommand) {
		t.Errorf("RunImage of an image with no command: %v, want ErrNoCommand", err)
	}
}
