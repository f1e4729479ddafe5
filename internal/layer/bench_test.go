package layer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWrite writes a tree of 2,000 small files in 40 directories.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	body := []byte(randomString(b, 4096))
	var total int64
	for d := 0; d < 40; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		must(b, os.Mkdir(sub, 0o755))
		for f := 0; f < 50; f++ {
			n := body[:(d*50+f)%len(body)]
			must(b, os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), n, 0o644))
			total += int64(len(n))
		}
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, dir, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
