// Command gentree writes the benchmark's generated source tree: a fixed
// number of files of mixed sizes whose content is made from a seeded PRNG
// (math/rand/v2 PCG), so the same flags always give byte-identical files.
// The text is built from lines of identifier-like words, so it compresses
// about as well as real source code rather than like random bytes.
//
// Usage: gentree [-files N] [-bytes TOTAL] [-seed S] DIR
//
// DIR must not exist or be empty; the tree is written below it as
// dNN/dNN/fNNNNN.txt. The total size is TOTAL within one file's rounding.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	files := flag.Int("files", 20000, "number of files")
	total := flag.Int64("bytes", 180<<20, "total bytes across all files")
	seed := flag.Uint64("seed", 4, "PRNG seed")
	flag.Parse()
	if flag.NArg() != 1 || *files <= 0 || *total <= 0 {
		fmt.Fprintln(os.Stderr, "usage: gentree [-files N] [-bytes TOTAL] [-seed S] DIR")
		os.Exit(2)
	}
	if err := generate(flag.Arg(0), *files, *total, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		os.Exit(1)
	}
}

// sizes draws a mixed size distribution (mostly small files, some medium,
// a few large, like a source tree) and scales it to sum to total.
func sizes(r *rand.Rand, n int, total int64) []int64 {
	raw := make([]float64, n)
	var sum float64
	for i := range raw {
		switch p := r.Float64(); {
		case p < 0.70:
			raw[i] = 200 + r.Float64()*6000
		case p < 0.95:
			raw[i] = 6000 + r.Float64()*30000
		default:
			raw[i] = 30000 + r.Float64()*200000
		}
		sum += raw[i]
	}
	out := make([]int64, n)
	var got int64
	for i, v := range raw {
		out[i] = int64(v / sum * float64(total))
		got += out[i]
	}
	out[n-1] += total - got
	return out
}

// linePool returns lines of pseudo source text: indentation, identifiers
// from a small vocabulary, punctuation and numbers.
func linePool(r *rand.Rand, n int) []string {
	words := []string{"func", "return", "if", "else", "for", "range", "err", "nil", "ctx",
		"var", "const", "type", "struct", "interface", "string", "int", "byte", "map",
		"buf", "len", "make", "append", "copy", "layer", "digest", "store", "path",
		"name", "size", "stage", "build", "cache", "key", "value", "opts", "result"}
	punct := []string{" := ", " = ", "(", ")", ", ", ".", " {", "}", " == ", " != ", "[]", "; "}
	pool := make([]string, n)
	var b strings.Builder
	for i := range pool {
		b.Reset()
		b.WriteString(strings.Repeat("\t", r.IntN(4)))
		for k, m := 0, 2+r.IntN(10); k < m; k++ {
			switch r.IntN(5) {
			case 0:
				b.WriteString(punct[r.IntN(len(punct))])
			case 1:
				fmt.Fprintf(&b, "%d", r.IntN(100000))
			default:
				w := words[r.IntN(len(words))]
				if r.IntN(3) == 0 {
					w += strings.ToUpper(words[r.IntN(len(words))][:1]) + words[r.IntN(len(words))][1:]
				}
				b.WriteString(w)
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
		pool[i] = b.String()
	}
	return pool
}

func generate(dir string, n int, total int64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("directory %q is not empty", dir)
	}
	pool := linePool(r, 8192)
	sz := sizes(r, n, total)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("d%02d", (i/50)%20), fmt.Sprintf("f%05d.txt", i))
		if err := writeFile(p, sz[i], r, pool); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, size int64, r *rand.Rand, pool []string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating directory for %q: %w", p, err)
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("creating %q: %w", p, err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	for left := size; left > 0; {
		l := pool[r.IntN(len(pool))]
		if int64(len(l)) > left {
			l = l[:left]
		}
		w.WriteString(l)
		left -= int64(len(l))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing %q: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %q: %w", p, err)
	}
	return nil
}
