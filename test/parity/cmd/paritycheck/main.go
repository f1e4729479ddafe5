// Command paritycheck compares images built by slimbuild with the results that
// BuildKit gave for the same Dockerfiles (test/parity/cases/*/expected.json),
// and records those expected results from BuildKit's OCI outputs.
//
//	paritycheck [-record] -cases DIR -images DIR -base busybox=TAR -base builder=TAR [-run REGEXP]
//
// For each case directory NAME under -cases, the image is read from
// -images/NAME.tar (an OCI archive) or -images/NAME/ (an OCI layout). Its final
// filesystem (layers applied with their whiteouts) is listed without mtimes and
// reduced to what differs from the base root filesystem the case builds on, and
// its config is reduced to the fields Dockerfile instructions set.
//
// Compare mode prints each difference, lists the cases that differ on purpose
// (they hold a deliberate.md), and ends with the line "N passed, M failed".
// It exits 1 when a case failed. Record mode writes expected.json per case.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Expected is the content of a case's expected.json.
type Expected struct {
	RecordedWith string  `json:"recorded_with"`
	Base         string  `json:"base"` // a -base name, or "scratch"
	Files        []Entry `json:"files"`
	Config       Config  `json:"config"`
}

// Config is the part of the image config that Dockerfile instructions set,
// plus the config file Author that MAINTAINER sets.
type Config struct {
	Author       string              `json:"Author,omitempty"` // top-level in the config file; set by MAINTAINER
	Env          []string            `json:"Env,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Healthcheck  *v1.HealthConfig    `json:"Healthcheck,omitempty"`
	OnBuild      []string            `json:"OnBuild,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

func configOf(cf *v1.ConfigFile) Config {
	c := cf.Config
	out := Config{
		Author: cf.Author,
		Env:    c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User,
		ExposedPorts: c.ExposedPorts, Volumes: c.Volumes, Labels: c.Labels, StopSignal: c.StopSignal,
		Healthcheck: c.Healthcheck, OnBuild: c.OnBuild, Shell: c.Shell,
	}
	// Empty and absent mean the same to a container runtime.
	if len(out.Env) == 0 {
		out.Env = nil
	}
	if len(out.Cmd) == 0 {
		out.Cmd = nil
	}
	if len(out.Entrypoint) == 0 {
		out.Entrypoint = nil
	}
	if len(out.ExposedPorts) == 0 {
		out.ExposedPorts = nil
	}
	if len(out.Volumes) == 0 {
		out.Volumes = nil
	}
	if len(out.Labels) == 0 {
		out.Labels = nil
	}
	if len(out.OnBuild) == 0 {
		out.OnBuild = nil
	}
	if len(out.Shell) == 0 {
		out.Shell = nil
	}
	return out
}

type baseFlag map[string]string

func (b baseFlag) String() string { return fmt.Sprint(map[string]string(b)) }
func (b baseFlag) Set(s string) error {
	name, file, ok := strings.Cut(s, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want NAME=TARBALL, got %q", s)
	}
	b[name] = file
	return nil
}

// base is a base root filesystem: its listing and its layer's DiffID.
type base struct {
	fs     FS
	diffID string
}

func loadBase(file string) (base, error) {
	f, err := os.Open(file)
	if err != nil {
		return base{}, fmt.Errorf("opening base %q: %w", file, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return base{}, fmt.Errorf("decompressing base %q: %w", file, err)
		}
		defer zr.Close()
		r = zr
	}
	h := sha256.New()
	fs := FS{}
	if err := fs.ApplyLayer(io.TeeReader(r, h)); err != nil {
		return base{}, fmt.Errorf("listing base %q: %w", file, err)
	}
	if _, err := io.Copy(h, r); err != nil { // tar padding after the end marker
		return base{}, fmt.Errorf("hashing base %q: %w", file, err)
	}
	return base{fs: fs, diffID: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// loadImage reads the image of an OCI layout directory or OCI archive tar.
// The returned cleanup removes what an archive was unpacked into.
func loadImage(p string) (v1.Image, func(), error) {
	noop := func() {}
	st, err := os.Stat(p)
	if err != nil {
		return nil, noop, err
	}
	dir := p
	cleanup := noop
	if !st.IsDir() {
		tmp, err := os.MkdirTemp("", "paritycheck-")
		if err != nil {
			return nil, noop, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
		if err := untar(p, tmp); err != nil {
			cleanup()
			return nil, noop, fmt.Errorf("unpacking OCI archive %q: %w", p, err)
		}
		dir = tmp
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		cleanup()
		return nil, noop, fmt.Errorf("reading OCI layout %q: %w", p, err)
	}
	img, err := findImage(idx)
	if err != nil {
		cleanup()
		return nil, noop, fmt.Errorf("finding the image in %q: %w", p, err)
	}
	return img, cleanup, nil
}

// findImage returns the only image of an index, or its linux/amd64 one,
// descending into nested indexes and skipping attestation manifests.
func findImage(idx v1.ImageIndex) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) == 1 && m.Manifests[0].MediaType.IsImage() {
		// A build for one platform (--platform=...): whatever it is for.
		return idx.Image(m.Manifests[0].Digest)
	}
	for _, d := range m.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != "amd64") {
			continue
		}
		switch {
		case d.MediaType.IsImage():
			return idx.Image(d.Digest)
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := findImage(child); err == nil {
				return img, nil
			}
		}
	}
	return nil, errors.New("no linux/amd64 image manifest")
}

func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q escapes the archive", hdr.Name)
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}

// result is what one image yields for comparison.
type result struct {
	fs       FS
	config   Config
	baseName string // detected from the first layer's DiffID; "scratch" when none matches
}

func analyse(img v1.Image, bases map[string]base) (result, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return result{}, fmt.Errorf("reading config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return result{}, fmt.Errorf("listing layers: %w", err)
	}
	res := result{fs: FS{}, config: configOf(cf), baseName: "scratch"}
	for i, l := range layers {
		if i == 0 {
			if d, err := l.DiffID(); err == nil {
				for name, b := range bases {
					if d.String() == b.diffID {
						res.baseName = name
					}
				}
			}
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return result{}, fmt.Errorf("opening layer %d: %w", i, err)
		}
		err = res.fs.ApplyLayer(rc)
		rc.Close()
		if err != nil {
			return result{}, fmt.Errorf("applying layer %d: %w", i, err)
		}
	}
	return res, nil
}

func main() {
	bases := baseFlag{}
	var (
		record       = flag.Bool("record", false, "write expected.json for each case from its image instead of comparing")
		casesDir     = flag.String("cases", "test/parity/cases", "directory of cases")
		imagesDir    = flag.String("images", "", "directory of built images: NAME.tar (OCI archive) or NAME/ (OCI layout)")
		run          = flag.String("run", "", "only cases whose name matches this regular expression")
		recordedWith = flag.String("recorded-with", "buildkit", "builder named in recorded expected.json files")
	)
	flag.Var(bases, "base", "NAME=TARBALL of a base root filesystem (repeatable)")
	flag.Parse()
	if *imagesDir == "" {
		fmt.Fprintln(os.Stderr, "paritycheck: -images is required")
		os.Exit(2)
	}
	if err := mainErr(*record, *casesDir, *imagesDir, *run, *recordedWith, bases); err != nil {
		fmt.Fprintln(os.Stderr, "paritycheck:", err)
		os.Exit(1)
	}
}

var errFailed = errors.New("some cases failed")

func mainErr(record bool, casesDir, imagesDir, run, recordedWith string, baseFiles baseFlag) error {
	var re *regexp.Regexp
	if run != "" {
		var err error
		if re, err = regexp.Compile(run); err != nil {
			return fmt.Errorf("parsing -run: %w", err)
		}
	}
	bases := map[string]base{}
	for name, file := range baseFiles {
		b, err := loadBase(file)
		if err != nil {
			return err
		}
		bases[name] = b
	}
	ents, err := os.ReadDir(casesDir)
	if err != nil {
		return fmt.Errorf("reading cases: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && (re == nil || re.MatchString(e.Name())) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)

	passed, failed := 0, 0
	var deliberate []string
	for _, name := range names {
		caseDir := filepath.Join(casesDir, name)
		imgPath := filepath.Join(imagesDir, name+".tar")
		if _, err := os.Stat(imgPath); err != nil {
			imgPath = filepath.Join(imagesDir, name)
		}
		if record {
			if err := recordCase(caseDir, imgPath, recordedWith, bases); err != nil {
				fmt.Printf("FAIL %s: %v\n", name, err)
				failed++
				continue
			}
			fmt.Printf("recorded %s\n", name)
			passed++
			continue
		}
		diffs, err := compareCase(caseDir, imgPath, bases)
		if err != nil {
			diffs = append(diffs, err.Error())
		}
		_, statErr := os.Stat(filepath.Join(caseDir, "deliberate.md"))
		isDeliberate := statErr == nil
		switch {
		case len(diffs) == 0:
			fmt.Printf("PASS %s\n", name)
			passed++
		case isDeliberate && err == nil:
			fmt.Printf("DIFF %s (deliberate, see %s)\n", name, filepath.Join(caseDir, "deliberate.md"))
			for _, d := range diffs {
				fmt.Printf("    %s\n", d)
			}
			deliberate = append(deliberate, name)
			passed++
		default:
			fmt.Printf("FAIL %s\n", name)
			for _, d := range diffs {
				fmt.Printf("    %s\n", d)
			}
			failed++
		}
	}
	if len(deliberate) > 0 {
		fmt.Printf("passed with a deliberate difference: %s\n", strings.Join(deliberate, ", "))
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errFailed
	}
	return nil
}

func recordCase(caseDir, imgPath, recordedWith string, bases map[string]base) error {
	img, cleanup, err := loadImage(imgPath)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := analyse(img, bases)
	if err != nil {
		return err
	}
	exp := Expected{RecordedWith: recordedWith, Base: res.baseName, Config: res.config}
	exp.Files = res.fs.DiffAgainst(bases[res.baseName].fs)
	if exp.Files == nil {
		exp.Files = []Entry{}
	}
	b, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(caseDir, "expected.json"), append(b, '\n'), 0o644)
}

func compareCase(caseDir, imgPath string, bases map[string]base) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(caseDir, "expected.json"))
	if err != nil {
		return nil, fmt.Errorf("no expected result (run test/parity/run.sh --record): %w", err)
	}
	var exp Expected
	if err := json.Unmarshal(b, &exp); err != nil {
		return nil, fmt.Errorf("parsing expected.json: %w", err)
	}
	baseFS := FS{}
	if exp.Base != "scratch" {
		bb, ok := bases[exp.Base]
		if !ok {
			return nil, fmt.Errorf("expected.json names base %q; pass -base %s=TARBALL", exp.Base, exp.Base)
		}
		baseFS = bb.fs
	}
	img, cleanup, err := loadImage(imgPath)
	if err != nil {
		return nil, fmt.Errorf("no image (did the build fail?): %w", err)
	}
	defer cleanup()
	res, err := analyse(img, bases)
	if err != nil {
		return nil, err
	}
	diffs := CompareEntries(exp.Files, res.fs.DiffAgainst(baseFS))
	// Round-trip the config through JSON so both sides have the same shape.
	cb, _ := json.Marshal(res.config)
	var got Config
	_ = json.Unmarshal(cb, &got)
	if d := cmp.Diff(exp.Config, got); d != "" {
		diffs = append(diffs, "config (-expected +got):\n"+indent(d))
	}
	return diffs, nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "      " + l
	}
	return strings.Join(lines, "\n")
}
