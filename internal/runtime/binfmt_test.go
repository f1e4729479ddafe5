package runtime

import (
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

const aarch64Entry = "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: %s\noffset 0\n" +
	"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"

func TestCheckEmulation(t *testing.T) {
	if Native("arm64") {
		t.Skip("arm64 is native here")
	}
	for _, tc := range []struct {
		name    string
		entries map[string]string
		err     string // "" for success
	}{
		{name: "F handler", entries: map[string]string{"qemu-aarch64": "enabled\n" + strings.Replace(aarch64Entry, "%s", "POF", 1)}},
		{name: "any name", entries: map[string]string{"mine": "enabled\n" + strings.Replace(aarch64Entry, "%s", "F", 1)}},
		{name: "no F", entries: map[string]string{"qemu-aarch64": "enabled\n" + strings.Replace(aarch64Entry, "%s", "PO", 1)}, err: "lacks the F flag"},
		{name: "disabled", entries: map[string]string{"qemu-aarch64": "disabled\n" + strings.Replace(aarch64Entry, "%s", "POF", 1)}, err: "no binfmt_misc handler"},
		{name: "other arch only", entries: map[string]string{"qemu-arm": "enabled\ninterpreter /q\nflags: F\noffset 0\nmagic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n"}, err: "no binfmt_misc handler"},
		{name: "not mounted", entries: nil, err: "not mounted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, data := range tc.entries {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.entries != nil {
				os.WriteFile(filepath.Join(dir, "status"), []byte("enabled\n"), 0o644)
			}
			err := CheckEmulation(dir, "arm64")
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "linux/arm64") || !errors.Is(err, ErrNoEmulator) {
				t.Fatalf("error %v, want ErrNoEmulator naming linux/arm64 and %q", err, tc.err)
			}
		})
	}
	if err := CheckEmulation(t.TempDir(), "mips"); err == nil {
		t.Error("an unknown architecture passed")
	}
}

func TestElfHeaderMatchesDebian(t *testing.T) {
	// The entry Debian's qemu-user-static registers for aarch64 takes our header.
	e, err := parseBinfmtEntry("qemu-aarch64", []byte("enabled\n"+strings.Replace(aarch64Entry, "%s", "POF", 1)))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := elfHeader("arm64")
	if !e.matches(h) {
		t.Error("Debian's aarch64 entry does not match an arm64 ELF header")
	}
	h, _ = elfHeader("amd64")
	if e.matches(h) {
		t.Error("Debian's aarch64 entry matches an amd64 ELF header")
	}
}

// TestEmulatorsAskOnce: Emulators reads binfmt_misc once per architecture (a
// handler set up during a build is not seen by it), and never for the host's.
func TestEmulatorsAskOnce(t *testing.T) {
	if Native("arm64") {
		t.Skip("arm64 is native here")
	}
	dir := t.TempDir()
	e := &Emulators{Dir: dir}
	if err := e.Check(goruntime.GOARCH); err != nil {
		t.Fatalf("the host's architecture: %v", err)
	}
	if err := e.Check("arm64"); !errors.Is(err, ErrNoEmulator) {
		t.Fatalf("no handler: %v, want ErrNoEmulator", err)
	}
	entry := "enabled\n" + strings.Replace(aarch64Entry, "%s", "F", 1)
	if err := os.WriteFile(filepath.Join(dir, "qemu-aarch64"), []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Check("arm64"); !errors.Is(err, ErrNoEmulator) {
		t.Errorf("asked again: %v, want the first answer", err)
	}
	if err := (&Emulators{Dir: dir}).Check("arm64"); err != nil {
		t.Errorf("a new Emulators: %v, want the handler found", err)
	}
}
