package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeReport makes a report with the given sizes and findings (category → names, paths).
func fakeReport(name string, compressed, uncompressed int64, found map[Category][2][]string, user string) *Report {
	f := newFinder()
	for c, np := range found {
		for i, p := range np[1] {
			n := ""
			if i < len(np[0]) {
				n = np[0][i]
			}
			f.add(c, p, n)
		}
	}
	return &Report{SchemaVersion: SchemaVersion, Image: name, CompressedSize: compressed,
		UncompressedSize: uncompressed, Surface: f.findings(user),
		Layers: []Layer{}, Directories: []DirSize{}, LargestFiles: []File{}, LargestHidden: []File{}}
}

func TestCompare(t *testing.T) {
	a := fakeReport("naive", 400_000_000, 1_300_000_000, map[Category][2][]string{
		Compilers:       {{"gcc", "make"}, {"/usr/bin/gcc", "/usr/bin/make"}},
		Headers:         {nil, {"/usr/include/a.h", "/usr/include/b.h"}},
		PackageManagers: {{"apt"}, {"/usr/bin/apt"}},
		Shells:          {{"bash", "sh"}, {"/bin/bash", "/bin/sh"}},
	}, "")
	b := fakeReport("multistage", 400_000, 1_000_000, map[Category][2][]string{
		Shells:  {{"sh"}, {"/bin/sh"}},
		Secrets: {{"id_rsa"}, {"/root/.ssh/id_rsa"}},
	}, "65534")
	c := Compare(a, b)
	if want := 100 * float64(1_300_000_000-1_000_000) / 1_300_000_000; c.ReductionPercent != want {
		t.Errorf("reduction = %v, want %v", c.ReductionPercent, want)
	}
	if c.CompressedReductionPercent != 99.9 {
		t.Errorf("compressed reduction = %v, want 99.9", c.CompressedReductionPercent)
	}
	if got := Percent(c.ReductionPercent); got != "99.9 %" {
		t.Errorf("Percent = %q", got)
	}
	if d := cmp.Diff([]Category{Compilers, Headers, PackageManagers, Root}, c.OnlyInA); d != "" {
		t.Errorf("only in A (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Category{Secrets}, c.OnlyInB); d != "" {
		t.Errorf("only in B (-want +got):\n%s", d)
	}
	for _, d := range c.Categories {
		if d.Category == Shells {
			want := CategoryDelta{Category: Shells, A: 2, B: 1, Status: "both", NamesOnlyInA: []string{"bash"}, NamesOnlyInB: []string{}}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("shells delta (-want +got):\n%s", diff)
			}
		}
	}
	// Growth is a negative reduction; an empty A gives 0, not a division by zero.
	if r := Compare(b, a).ReductionPercent; r >= 0 {
		t.Errorf("reverse reduction = %v, want negative", r)
	}
	if r := Compare(&Report{}, b).ReductionPercent; r != 0 {
		t.Errorf("reduction from empty = %v", r)
	}

	var buf bytes.Buffer
	if err := WriteComparisonText(&buf, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Size reduction: 99.9 % uncompressed", "Only in A: compilers, headers, package-managers, root", "Only in B: secrets", "A only: gcc, make"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("comparison text lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := WriteJSON(&buf, c); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Reduction float64  `json:"reduction_percent"`
		OnlyInA   []string `json:"only_in_a"`
		A         struct {
			Surface []struct {
				Category string   `json:"category"`
				Paths    []string `json:"paths"`
			} `json:"attack_surface"`
		} `json:"a"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Reduction != c.ReductionPercent || len(back.OnlyInA) != 4 || len(back.A.Surface) != len(Categories) {
		t.Errorf("JSON round trip: %+v", back)
	}
	if strings.Contains(buf.String(), "null") {
		t.Errorf("JSON has null arrays:\n%s", buf.String())
	}
}

func TestSummarize(t *testing.T) {
	builder := fakeReport("builder", 1, 1, map[Category][2][]string{
		Compilers:       {{"gcc", "make"}, {"/usr/bin/gcc", "/usr/bin/make"}},
		Headers:         {nil, {"/usr/include/a.h", "/usr/include/b.h", "/usr/include/c.h"}},
		PackageManagers: {{"apt"}, {"/usr/bin/apt"}},
		Shells:          {{"sh"}, {"/bin/sh"}},
	}, "")
	other := fakeReport("deps", 1, 1, map[Category][2][]string{
		Headers: {nil, {"/usr/include/a.h", "/usr/include/d.h"}},
	}, "")
	final := fakeReport("app", 2_200_000, 5_000_000, map[Category][2][]string{
		Shells: {{"sh"}, {"/bin/sh"}},
	}, "")
	s := Summarize(final, []*Report{builder, nil, other})
	if d := cmp.Diff([]string{"gcc", "make", "4 headers", "apt"}, s.LeftBehind); d != "" {
		t.Errorf("left behind (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"shells: sh", "runs as root"}, s.Remaining); d != "" {
		t.Errorf("remaining (-want +got):\n%s", d)
	}
	if s.StagesBuilt != 3 || s.StagesDiscarded != 2 {
		t.Errorf("stages %d built, %d discarded", s.StagesBuilt, s.StagesDiscarded)
	}
	text := s.Text()
	for _, want := range []string{"app: 2.2 MB compressed, 5.0 MB uncompressed", "stages: 3 built, 2 discarded",
		"left behind in discarded stages: gcc, make, 4 headers, apt", "attack surface left: shells: sh; runs as root"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	clean := Summarize(fakeReport("x", 1, 1, nil, "1000"), nil)
	if !strings.Contains(clean.Text(), "attack surface left: none") || strings.Contains(clean.Text(), "left behind") {
		t.Errorf("clean summary:\n%s", clean.Text())
	}
}

func TestGate(t *testing.T) {
	r := analyze(t, buildImage(t, "", plantedLayers()...))
	for _, tc := range []struct {
		name      string
		gate      Gate
		wantCats  []string
		wantPaths map[string][]string
	}{
		{name: "no gate", gate: Gate{}},
		{name: "size within", gate: Gate{MaxSize: r.UncompressedSize}},
		{name: "size over", gate: Gate{MaxSize: r.UncompressedSize - 1}, wantCats: []string{"size"},
			wantPaths: map[string][]string{"size": {"/bin/busybox"}}},
		{name: "compilers", gate: Gate{Forbid: []string{"compilers"}}, wantCats: []string{"compilers"},
			wantPaths: map[string][]string{"compilers": {"/usr/bin/gcc", "/usr/bin/gcc-12"}}},
		{name: "several", gate: Gate{Forbid: []string{"root", "capabilities", "secrets", "setuid"}},
			wantCats: []string{"root", "capabilities", "secrets", "setuid"},
			wantPaths: map[string][]string{"capabilities": {"/usr/bin/ping"}, "setuid": {"/usr/bin/passwd"},
				"secrets": {"/app/.env", "/app/key.txt", "/etc/ssl/private/server.pem"}}},
		{name: "unknown fails closed", gate: Gate{Forbid: []string{"compilerz"}}, wantCats: []string{"compilerz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.gate.Check(r)
			var cats []string
			for _, x := range v {
				cats = append(cats, x.Category)
				if want, ok := tc.wantPaths[x.Category]; ok {
					if x.Category == "size" {
						if len(x.Paths) == 0 || x.Paths[0] != want[0] {
							t.Errorf("size violation paths = %v", x.Paths)
						}
					} else if d := cmp.Diff(want, x.Paths); d != "" {
						t.Errorf("%s paths (-want +got):\n%s", x.Category, d)
					}
				}
			}
			if d := cmp.Diff(tc.wantCats, cats); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
		})
	}
	err := &GateError{Violations: Gate{Forbid: []string{"compilers", "headers"}}.Check(r)}
	if err.ExitCode() != GateExitCode || !strings.Contains(err.Error(), "/usr/bin/gcc-12") || !strings.Contains(err.Error(), "/usr/include/stdio.h") {
		t.Errorf("gate error %d: %s", err.ExitCode(), err)
	}
}

func TestParseForbid(t *testing.T) {
	got, err := ParseForbid(" compilers, Shells,,compilers,capabilities ")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"compilers", "shells", "capabilities"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	_, err = ParseForbid("compilers,kernels")
	if !errors.Is(err, ErrUnknownCategory) || !strings.Contains(err.Error(), "kernels") ||
		!strings.Contains(err.Error(), "compilers,headers,package-managers,shells,setuid,world-writable,capabilities,root,secrets") {
		t.Errorf("err = %v", err)
	}
	if err := (Gate{Forbid: []string{"nope"}}).Validate(); !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("Validate = %v", err)
	}
	if err := (Gate{Forbid: []string{"root"}, MaxSize: 5}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1234": 1234, "2.2MB": 2_200_000, "100kB": 100_000, "100KB": 100_000, "5MiB": 5 << 20,
		"1.5 GiB": 3 << 29, "7B": 7, "1g": 1_000_000_000, " 3 mb ": 3_000_000, "0": 0, "2KiB": 2048,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "-5MB", "5XB", "1.2.3", "99999999999EB", "5 M B"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestHumanSizeAndCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 2_200_000: "2.2 MB",
		134_000_000: "134 MB", 1_300_000_000: "1.3 GB", 999_960: "1.0 MB", 99_940: "99.9 kB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1284: "1,284", 1234567: "1,234,567", -1284: "-1,284"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Percent(99.96); got != "99.9 %" {
		t.Errorf("Percent(99.96) = %q: must not round up", got)
	}
}

func TestParseGate(t *testing.T) {
	g, err := ParseGate("2.2MB", "compilers,root")
	if err != nil || g.MaxSize != 2_200_000 || len(g.Forbid) != 2 {
		t.Errorf("ParseGate = %+v, %v", g, err)
	}
	if g, err := ParseGate("", ""); err != nil || g.MaxSize != 0 || len(g.Forbid) != 0 {
		t.Errorf("empty ParseGate = %+v, %v", g, err)
	}
	if _, err := ParseGate("lots", ""); err == nil || !strings.Contains(err.Error(), "--max-size") {
		t.Errorf("bad size: %v", err)
	}
	if _, err := ParseGate("", "gcc"); !errors.Is(err, ErrUnknownCategory) {
		t.Errorf("bad category: %v", err)
	}
}

// TestParseRAMSize: docker's memory sizes are powers of 1024 whatever the unit's
// spelling, with ParseSize's syntax and refusals.
func TestParseRAMSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"128m", 128 << 20}, {"64M", 64 << 20}, {"1g", 1 << 30}, {"512k", 512 << 10}, {"2KB", 2048},
		{"5MiB", 5 << 20}, {"1.5g", 3 << 29}, {"100", 100}, {"100b", 100}, {"1t", 1 << 40},
	} {
		if got, err := ParseRAMSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseRAMSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "big", "-1m", "5ib", "5i", "1.2.3m", "9999999999999t", "5 M B"} {
		if got, err := ParseRAMSize(bad); err == nil {
			t.Errorf("ParseRAMSize(%q) = %d, want an error", bad, got)
		}
	}
}
