package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// vmHWM reads the process's peak resident memory in kB; resetPeak resets it to
// the current resident size.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func resetPeak(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
}

// TestRunOutputBounded: a RUN that prints a 100 MB line, or 50 MB of lines,
// succeeds; its log is clipped with BuildKit's notice and slimbuild's memory
// does not grow with the output.
func TestRunOutputBounded(t *testing.T) {
	st := newStore(t)
	tests := []struct{ name, run string }{
		{"one 100 MB line", "head -c 100000000 /dev/zero | tr '\\0' a"},
		{"50 MB of lines", "yes 'some output of a build step' | head -c 50000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var logBytes, logLines int
			var last string
			progress := func(e engine.Event) {
				if e.Kind != engine.StepLog {
					return
				}
				mu.Lock()
				logBytes += len(e.Text) + 1
				logLines++
				last = e.Text
				mu.Unlock()
			}
			resetPeak(t)
			before := vmHWM(t)
			mustBuild(t, st, map[string]string{
				"Dockerfile": "FROM busybox\nRUN " + tt.run + "\n",
			}, engine.Options{Progress: progress, NoCache: true})
			grew := vmHWM(t) - before
			t.Logf("peak RSS grew by %d kB; log: %d lines, %d bytes", grew, logLines, logBytes)
			if grew > 64<<10 {
				t.Errorf("peak RSS grew by %d MB while the RUN printed its output", grew>>10)
			}
			if logBytes > 3<<20 {
				t.Errorf("the step logged %d bytes, want at most about 2 MiB", logBytes)
			}
			if last != "[output clipped, log limit 2MiB reached]" {
				t.Errorf("the log ends with %.100q, want the clip notice", last)
			}
		})
	}
}

// TestStatCacheSeesInPlaceEdit: a context file rewritten in place with the same
// size and its old mtime put back is read again, not served from the stat cache.
func TestStatCacheSeesInPlaceEdit(t *testing.T) {
	st := newStore(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY data /data\n",
		"data":       "old content",
	})
	res, err := buildIn(t, st, dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileData(t, fsOf(t, res.Image), "data"); got != "old content" {
		t.Fatalf("first build: /data = %q", got)
	}
	p := filepath.Join(dir, "data")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a later ctime on coarse clocks
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("new content"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	res, err = buildIn(t, st, dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileData(t, fsOf(t, res.Image), "data"); got != "new content" {
		t.Errorf("after an in-place edit with the mtime put back, /data = %q, want the new content", got)
	}
}

// TestRunMountOptions: the options slimbuild honours act, the others are errors
// that name the Dockerfile line and the option.
func TestRunMountOptions(t *testing.T) {
	st := newStore(t)
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := engine.Options{Secrets: map[string]string{"tok": secret}}
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
RUN --mount=type=secret,id=tok,env=TOKEN [ "$TOKEN" = s3cret ] && [ ! -e /run/secrets/tok ] && echo env-ok > /env
RUN --mount=type=secret,id=tok,uid=65534,gid=65534,mode=0440 stat -c '%u %g %a' /run/secrets/tok > /secret-owner
RUN --mount=type=secret,id=tok stat -c '%u %g %a' /run/secrets/tok > /secret-default
RUN --mount=type=cache,target=/c,uid=65534,gid=65534,mode=0700,sharing=locked stat -c '%u %g %a' /c > /cache-owner
RUN --mount=type=tmpfs,target=/t,size=1m df -k /t | tail -1 | awk '{print $2}' > /tmpfs-size
`,
	}, opts)
	fsys := fsOf(t, res.Image)
	for p, want := range map[string]string{
		"env": "env-ok", "secret-owner": "65534 65534 440", "secret-default": "0 0 400",
		"cache-owner": "65534 65534 700", "tmpfs-size": "1024",
	} {
		if got := strings.TrimSpace(fileData(t, fsys, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	for _, tt := range []struct{ mount, option string }{
		{"type=cache,target=/c,source=/x", "source"},
		{"type=bind,target=/b,id=x", "id"},
		{"type=tmpfs,target=/t,id=x", "id"},
		{"type=secret,id=tok,rw", "rw"},
	} {
		err := buildErr(t, st, map[string]string{
			"Dockerfile": "FROM busybox\nRUN --mount=" + tt.mount + " true\n",
		}, opts)
		if !strings.HasPrefix(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), `option "`+tt.option+`" is not supported`) {
			t.Errorf("--mount=%s: error %q, want Dockerfile:2 and the option %q", tt.mount, err, tt.option)
		}
	}
}

// TestAddChecksumLocal: ADD --checksum on a context file is an error, as in BuildKit.
func TestAddChecksumLocal(t *testing.T) {
	st := newStore(t)
	err := buildErr(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d f /f\n",
		"f":          "x",
	}, engine.Options{})
	if !strings.HasPrefix(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), "HTTP(S)") {
		t.Errorf("error %q, want Dockerfile:2 and that --checksum needs an HTTP(S) source", err)
	}
}
