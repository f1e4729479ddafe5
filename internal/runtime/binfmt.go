package runtime

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
)

// Programs of another architecture run through binfmt_misc: the kernel hands an
// ELF file whose header matches a registered entry to that entry's interpreter
// (Debian's qemu-user-static). Inside a container the interpreter's path does
// not exist, so only an entry with the F (fix binary) flag, whose interpreter the
// kernel opened when it was registered, works for RUN.

// BinfmtDir is where the kernel shows binfmt_misc entries.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// BinfmtSetup is the one-line setup that registers Debian's handlers with the F
// flag (systemd-binfmt reads /usr/lib/binfmt.d, which qemu-user-static fills).
const BinfmtSetup = "apt-get install -y qemu-user-static && /lib/systemd/systemd-binfmt"

// ErrNoEmulator is wrapped by CheckEmulation's error when nothing can run
// programs of the architecture.
var ErrNoEmulator = errors.New("no binfmt_misc handler")

// elfMachine is the ELF class (1: 32-bit, 2: 64-bit), byte order (1: little,
// 2: big) and e_machine of each GOARCH slimbuild knows how to emulate.
var elfMachine = map[string]struct {
	class, data byte
	machine     uint16
}{
	"amd64":    {2, 1, 62},
	"386":      {1, 1, 3},
	"arm64":    {2, 1, 183},
	"arm":      {1, 1, 40},
	"ppc64le":  {2, 1, 21},
	"s390x":    {2, 2, 22},
	"riscv64":  {2, 1, 243},
	"mips64le": {2, 1, 8},
}

// elfHeader is the start of an executable's ELF header for arch.
func elfHeader(arch string) ([]byte, bool) {
	m, ok := elfMachine[arch]
	if !ok {
		return nil, false
	}
	h := make([]byte, 20)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = m.class, m.data, 1
	if m.data == 1 {
		h[16], h[17] = 2, 0 // e_type ET_EXEC
		h[18], h[19] = byte(m.machine), byte(m.machine>>8)
	} else {
		h[16], h[17] = 0, 2
		h[18], h[19] = byte(m.machine>>8), byte(m.machine)
	}
	return h, true
}

// Native reports whether the host runs programs of arch without emulation.
func Native(arch string) bool {
	return arch == goruntime.GOARCH || (goruntime.GOARCH == "amd64" && arch == "386")
}

// binfmtEntry is one registered handler, as its file in BinfmtDir reads.
type binfmtEntry struct {
	name, interpreter, flags string
	enabled                  bool
	offset                   int
	magic, mask              []byte
}

func parseBinfmtEntry(name string, data []byte) (binfmtEntry, error) {
	e := binfmtEntry{name: name}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		var err error
		switch k {
		case "enabled":
			e.enabled = true
		case "interpreter":
			e.interpreter = v
		case "flags:":
			e.flags = v
		case "offset":
			e.offset, err = strconv.Atoi(v)
		case "magic":
			e.magic, err = hex.DecodeString(v)
		case "mask":
			e.mask, err = hex.DecodeString(v)
		}
		if err != nil {
			return e, fmt.Errorf("binfmt_misc entry %s: %s: %w", name, k, err)
		}
	}
	return e, nil
}

// matches reports whether the entry takes a file that starts with header.
func (e binfmtEntry) matches(header []byte) bool {
	if len(e.magic) == 0 || e.offset < 0 || e.offset+len(e.magic) > len(header) {
		return false
	}
	for i, m := range e.magic {
		b := header[e.offset+i]
		if i < len(e.mask) {
			b &= e.mask[i]
		}
		if b != m {
			return false
		}
	}
	return true
}

// CheckEmulation returns nil when RUN can execute programs for arch: natively,
// or through an enabled binfmt_misc entry with the F flag in dir (BinfmtDir).
// Otherwise its error names the platform and the one-line setup.
func CheckEmulation(dir, arch string) error {
	if Native(arch) {
		return nil
	}
	platform := "linux/" + arch
	header, ok := elfHeader(arch)
	if !ok {
		return fmt.Errorf("RUN for %s: slimbuild does not know how to run %s programs (%w)", platform, arch, ErrNoEmulator)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return fmt.Errorf("RUN for %s needs binfmt_misc, which is not mounted at %s (%w for %s programs): mount it (mount -t binfmt_misc binfmt_misc %s), then set up qemu: %s",
			platform, dir, ErrNoEmulator, arch, dir, BinfmtSetup)
	}
	var withoutF string
	for _, ent := range ents {
		if ent.Name() == "register" || ent.Name() == "status" || ent.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			continue
		}
		e, err := parseBinfmtEntry(ent.Name(), data)
		if err != nil || !e.enabled || !e.matches(header) {
			continue
		}
		if !strings.Contains(e.flags, "F") {
			withoutF = e.name
			continue
		}
		return nil
	}
	if withoutF != "" {
		return fmt.Errorf("RUN for %s: the binfmt_misc handler %s for %s programs lacks the F flag, so its interpreter is not found inside a container (%w that works): register it again with F, e.g. %s",
			platform, withoutF, arch, ErrNoEmulator, BinfmtSetup)
	}
	return fmt.Errorf("RUN for %s: %w for %s programs in %s: set one up with: %s", platform, ErrNoEmulator, arch, dir, BinfmtSetup)
}

// Emulators answers CheckEmulation once per architecture (a build asks before
// every RUN of a foreign stage). Dir is where binfmt_misc entries are read, ""
// for BinfmtDir. The zero value is ready to use; it is safe for concurrent use.
type Emulators struct {
	Dir string

	mu      sync.Mutex
	checked map[string]error
}

// Check is CheckEmulation(e.Dir, arch), asked once per arch.
func (e *Emulators) Check(arch string) error {
	if Native(arch) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.checked == nil {
		e.checked = map[string]error{}
	}
	err, ok := e.checked[arch]
	if !ok {
		dir := e.Dir
		if dir == "" {
			dir = BinfmtDir
		}
		err = CheckEmulation(dir, arch)
		e.checked[arch] = err
	}
	return err
}
