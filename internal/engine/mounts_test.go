package engine_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/layer"
)

func TestSecretMountNeverStored(t *testing.T) {
	st := newStore(t)
	var raw [24]byte
	rand.Read(raw[:])
	token := "tok-" + hex.EncodeToString(raw[:])
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha
RUN --mount=type=secret,id=tok,target=/etc/app-token cp /etc/app-token /dev/null && echo read > /second
`,
	}, engine.Options{Secrets: map[string]string{"tok": secretFile}})
	fsys := fsOf(t, res.Image)
	if got := strings.TrimSpace(fileData(t, fsys, "tok.sha")); got != hex.EncodeToString(sum[:]) {
		t.Errorf("the RUN saw a secret with sha256 %q, want %x", got, sum)
	}
	fileData(t, fsys, "second")
	for _, p := range []string{"run/secrets/tok", "etc/app-token"} {
		if _, ok := fsys[p]; ok {
			t.Errorf("the secret's mount point /%s is in the image", p)
		}
	}

	// No layer of the image, decompressed, holds the token.
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("layer %d holds the secret", i)
		}
	}
	rawCfg, err := res.Image.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rawCfg, []byte(token)) {
		t.Errorf("the config (or its history) holds the secret")
	}
	for _, h := range configOf(t, res.Image).History {
		if strings.Contains(h.CreatedBy, token) {
			t.Errorf("history entry %q holds the secret", h.CreatedBy)
		}
	}
	// Nor does any file of the store: blobs (decompressed when they are layers),
	// cache records, unpacked layers.
	err = filepath.WalkDir(st.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rc, err := layer.Decompress(bytes.NewReader(data)); err == nil {
			if plain, err := io.ReadAll(rc); err == nil {
				data = append(data, plain...)
			}
			rc.Close()
		}
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("store file %s holds the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSecretRequiredButMissing(t *testing.T) {
	st := newStore(t)
	err := buildErr(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=absent,required=true cat /run/secrets/absent\n",
	}, engine.Options{})
	if !strings.Contains(err.Error(), "absent") || !strings.HasPrefix(err.Error(), "Dockerfile:2:") {
		t.Errorf("error %q should name the secret and the line", err)
	}
}

func TestCacheMountPersists(t *testing.T) {
	st := newStore(t)
	var raw [8]byte
	rand.Read(raw[:])
	stamp := hex.EncodeToString(raw[:])
	mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/cache echo " + stamp + " > /cache/stamp && echo first > /first\n",
	}, engine.Options{})
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/cache cat /cache/stamp > /seen\n",
	}, engine.Options{NoCache: true})
	fsys := fsOf(t, res.Image)
	if got := fileData(t, fsys, "seen"); got != stamp+"\n" {
		t.Errorf("second build saw %q in the cache mount, want %q", got, stamp+"\n")
	}
	if _, ok := fsys["cache/stamp"]; ok {
		t.Errorf("the cache mount's content is in the image")
	}
}

func TestBindMountFromContext(t *testing.T) {
	st := newStore(t)
	res := mustBuild(t, st, map[string]string{
		"Dockerfile": `FROM busybox AS other
RUN mkdir /out && echo from-stage > /out/f
FROM busybox
RUN --mount=type=bind,source=data,target=/mnt cat /mnt/f > /bound
RUN --mount=type=bind,from=other,source=/out,target=/src cat /src/f > /bound-stage
`,
		"data/f": "bound content\n",
	}, engine.Options{})
	fsys := fsOf(t, res.Image)
	if got := fileData(t, fsys, "bound"); got != "bound content\n" {
		t.Errorf("/bound = %q", got)
	}
	if got := fileData(t, fsys, "bound-stage"); got != "from-stage\n" {
		t.Errorf("/bound-stage = %q", got)
	}
	for _, p := range []string{"mnt/f", "src/f", "src", "out"} {
		if _, ok := fsys[p]; ok {
			t.Errorf("the bind mount's /%s is in the image", p)
		}
	}
}
