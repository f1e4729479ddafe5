package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
)

// TestRunSecurityInsecure: RUN --security=insecure is refused, naming the
// Dockerfile's line, unless the security.insecure entitlement is granted; allowed, the step has every
// capability and no seccomp filter, while a plain RUN keeps the default set.
func TestRunSecurityInsecure(t *testing.T) {
	st := newStore(t)
	files := map[string]string{"Dockerfile": "FROM busybox\nRUN true\nRUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status > /insecure\nRUN grep -E '^(CapEff|Seccomp):' /proc/self/status > /sandboxed\n"}
	err := buildErr(t, st, files, engine.Options{Network: "none"})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:3") || !strings.Contains(err.Error(), "security.insecure") {
		t.Fatalf("insecure RUN without the entitlement: err = %v, want a refusal at Dockerfile:3", err)
	}
	res := mustBuild(t, st, files, engine.Options{Network: "none", Allow: []engine.Entitlement{engine.EntitlementSecurityInsecure}})
	fs := fsOf(t, res.Image)
	insecure, sandboxed := fileData(t, fs, "insecure"), fileData(t, fs, "sandboxed")
	if !strings.Contains(insecure, "Seccomp:\t0") || strings.Contains(insecure, "CapEff:\t00000000a80425fb") {
		t.Errorf("insecure RUN is still sandboxed:\n%s", insecure)
	}
	if !strings.Contains(sandboxed, "Seccomp:\t2") || !strings.Contains(sandboxed, "CapEff:\t00000000a80425fb") {
		t.Errorf("plain RUN after an insecure one is not sandboxed:\n%s", sandboxed)
	}
}

// TestAddURLUnpack: a downloaded archive stays a file unless ADD --unpack=true
// (BuildKit 0.34); a local archive is unpacked unless --unpack=false.
func TestAddURLUnpack(t *testing.T) {
	st := newStore(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := "inside the archive\n"
	if err := tw.WriteHeader(&tar.Header{Name: "pkg/inner.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	zw.Close()
	archive := buf.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(archive)
	}))
	defer srv.Close()
	files := map[string]string{
		"Dockerfile":   fmt.Sprintf("FROM busybox\nADD %[1]s/a.tar.gz /plain/\nADD --unpack=true %[1]s/a.tar.gz /unpacked/\nADD local.tar.gz /local/\nADD --unpack=false local.tar.gz /kept/\n", srv.URL),
		"local.tar.gz": string(archive),
	}
	fs := fsOf(t, mustBuild(t, st, files, engine.Options{Network: "none"}).Image)
	for p, want := range map[string]string{
		"plain/a.tar.gz":         string(archive),
		"unpacked/pkg/inner.txt": body,
		"local/pkg/inner.txt":    body,
		"kept/local.tar.gz":      string(archive),
	} {
		if got := fileData(t, fs, p); got != want {
			t.Errorf("%s: got %d bytes, want %d", p, len(got), len(want))
		}
	}
	for _, p := range []string{"plain/pkg/inner.txt", "unpacked/a.tar.gz", "kept/pkg/inner.txt"} {
		if _, ok := fs[p]; ok {
			t.Errorf("%s exists", p)
		}
	}
}
