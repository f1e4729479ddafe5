package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// comparisonFixture compares the planted image (A) with a small clean one (B).
func comparisonFixture(t *testing.T) *Comparison {
	t.Helper()
	a := analyze(t, buildImage(t, "", plantedLayers()...))
	b := analyze(t, buildImage(t, "65534",
		testLayer{createdBy: "COPY hello /hello", files: []tf{file("hello", elf(5000), 0o755)}},
		testLayer{createdBy: "COPY <tag> /etc/motd", files: []tf{file("etc/motd", "<script>alert(1)</script>", 0o644)}}))
	b.Image = "multi<stage>"
	return Compare(a, b)
}

func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteComparisonHTML(&buf, comparisonFixture(t)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Nothing that would reach outside the page.
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(page, "multi&lt;stage&gt;") {
		t.Errorf("image name not escaped")
	}
	var single bytes.Buffer
	if err := WriteHTML(&single, analyze(t, buildImage(t, "", plantedLayers()...))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(single.String(), `id="comparison"`) || !strings.Contains(single.String(), "<svg") {
		t.Errorf("single report page is wrong")
	}
}

// chromium returns the path of a Chromium binary, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed and this test does not install it: run `apt-get install -y chromium`")
	return ""
}

// TestHTMLRendersInChromium writes a comparison page, loads it in headless Chromium and
// checks the rendered DOM: charts with bars, and the computed numbers.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	c := comparisonFixture(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteComparisonHTML(f, c); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)

	// Each chart rendered as an svg with one rect per bar.
	for _, id := range []string{"cmp-sizes", "rA-layers", "rA-dirs", "rB-layers", "rB-dirs"} {
		re := regexp.MustCompile(`(?s)<svg id="` + id + `"[^>]*>(.*?)</svg>`)
		m := re.FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("rendered DOM has no svg %s", id)
			continue
		}
		rects := regexp.MustCompile(`<rect [^>]*width="(\d+)"`).FindAllStringSubmatch(m[1], -1)
		var want int
		switch id {
		case "cmp-sizes":
			want = 6
		case "rA-layers":
			want = len(c.A.Layers)
		case "rB-layers":
			want = len(c.B.Layers)
		case "rA-dirs":
			want = len(c.A.Directories)
		case "rB-dirs":
			want = len(c.B.Directories)
		}
		if len(rects) != want {
			t.Errorf("svg %s has %d bars, want %d", id, len(rects), want)
		}
		if len(rects) > 0 && rects[0][1] == "0" {
			t.Errorf("svg %s: the largest bar has zero width", id)
		}
	}
	// The numbers are there, as computed.
	for _, want := range []string{
		"Size reduction: " + Percent(c.ReductionPercent) + " uncompressed",
		HumanSize(c.A.UncompressedSize), HumanSize(c.B.UncompressedSize),
		HumanSize(c.A.CompressedSize), HumanSize(c.B.CompressedSize),
		"/usr/bin/gcc-12", "/usr/include/stdio.h", "/var/lib/dpkg", "/usr/bin/passwd",
		"Only in A: compilers, headers, package-managers, shells, setuid, world-writable, capabilities, root, secrets",
		"multi&lt;stage&gt;",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script>alert") {
		t.Errorf("unescaped content reached the DOM")
	}
}
