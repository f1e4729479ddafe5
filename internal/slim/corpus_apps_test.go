package slim

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slimbuild/slimbuild/internal/slim/slimtest"
)

// corpusTLS makes a test CA and a server certificate for 127.0.0.1 signed by
// it (made now, no key is committed): the server's pair goes to /app/tls/ and
// the CA joins the image's system bundle, /etc/ssl/certs/ca-certificates.crt,
// which is the only trust the TLS client case has.
func corpusTLS(t *testing.T, root string) {
	t.Helper()
	pki := slimtest.NewTestPKI(t)
	slimtest.WriteFile(t, root, "/app/tls/server.crt", pki.ServerCert, 0o644)
	slimtest.WriteFile(t, root, "/app/tls/server.key", pki.ServerKey, 0o600)
	bundle := filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt")
	old, err := os.ReadFile(bundle)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slimtest.WriteFile(t, root, "/etc/ssl/certs/ca-certificates.crt", string(old)+pki.CA, 0o644)
}

// corpusNodeApp installs the npm dependencies of the app in src (npm install,
// from the registry) and lays the app out in dst: main.js, package.json and
// node_modules. It reports false, after logging why, when npm could not
// install them outside CI; in CI (CI=true) that fails the test.
func corpusNodeApp(t *testing.T, src, dst string) bool {
	t.Helper()
	work := t.TempDir()
	slimtest.CopyFile(t, filepath.Join(src, "package.json"), filepath.Join(work, "package.json"), 0o644)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--no-package-lock")
	cmd.Dir = work
	if b, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("npm install in %s: %v\n%s", work, err, b)
		}
		t.Logf("the Node.js case is left out: npm install failed (is the npm registry reachable?): %v\n%s", err, b)
		return false
	}
	slimtest.CopyFile(t, filepath.Join(src, "main.js"), filepath.Join(dst, "main.js"), 0o644)
	slimtest.CopyFile(t, filepath.Join(src, "package.json"), filepath.Join(dst, "package.json"), 0o644)
	copyTree(t, filepath.Join(work, "node_modules"), filepath.Join(dst, "node_modules"))
	return true
}

// copyTree copies the directories and regular files below src to dst
// (files 0644; npm packages carry no links the app needs).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case d.Type().IsRegular():
			slimtest.CopyFile(t, p, filepath.Join(dst, rel), 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
