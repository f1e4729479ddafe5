package engine

// Tests of the engine's input limits and cache key encoding that need no root.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/quick"
)

// logSink collects what a lineWriter emits, keeping only totals and the last lines.
type logSink struct {
	lines, bytes int
	last         []string
	longest      int
}

func (s *logSink) emit(l string) {
	s.lines++
	s.bytes += len(l) + 1
	s.longest = max(s.longest, len(l))
	s.last = append(s.last, l)
	if len(s.last) > 3 {
		s.last = s.last[1:]
	}
}

func TestLineWriterBounded(t *testing.T) {
	chunk := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	lines := func(n int) []byte { return bytes.Repeat([]byte("a line of output\n"), n) }
	tests := []struct {
		name      string
		writes    func(w *lineWriter)
		wantLines int  // when > 0, exactly this many lines
		clipped   bool // the output ends with the notice
	}{
		{"short lines", func(w *lineWriter) { w.Write([]byte("one\ntwo\r\nthree")) }, 3, false},
		{"100 MB on one line", func(w *lineWriter) {
			for i := 0; i < 100_000_000/(32<<10); i++ {
				w.Write(chunk('a', 32<<10))
			}
			w.Write([]byte("\n"))
		}, 0, true},
		{"100 MB unterminated", func(w *lineWriter) {
			for i := 0; i < 100_000_000/(32<<10); i++ {
				w.Write(chunk('a', 32<<10))
			}
		}, 0, true},
		{"50 MB of lines", func(w *lineWriter) {
			for i := 0; i < 50_000_000/(17*2000); i++ {
				w.Write(lines(2000))
			}
		}, 0, true},
		{"2 MiB exactly", func(w *lineWriter) {
			w.Write(append(chunk('b', maxLogLine-1), '\n'))
			w.Write(bytes.Repeat(append(chunk('b', maxLogLine-1), '\n'), maxStepLog/maxLogLine-1))
		}, maxStepLog / maxLogLine, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink logSink
			w := &lineWriter{emit: sink.emit}
			tt.writes(w)
			w.Flush()
			if tt.wantLines > 0 && sink.lines != tt.wantLines {
				t.Errorf("emitted %d lines, want %d", sink.lines, tt.wantLines)
			}
			if limit := maxStepLog + 2*maxLogLine; sink.bytes > limit {
				t.Errorf("emitted %d bytes, want at most %d", sink.bytes, limit)
			}
			if sink.longest > maxLogLine+100 {
				t.Errorf("emitted a line of %d bytes, want at most about %d", sink.longest, maxLogLine)
			}
			if c := cap(w.cur); c > 2*maxLogLine {
				t.Errorf("the line buffer grew to %d bytes", c)
			}
			last := sink.last[len(sink.last)-1]
			if got := last == clipNotice; got != tt.clipped {
				t.Errorf("last emitted line %.80q, want the clip notice: %v", last, tt.clipped)
			}
			if n := strings.Count(strings.Join(sink.last, "\n"), clipNotice); n > 1 {
				t.Errorf("the notice was emitted %d times", n)
			}
			if tail := w.Tail(); len(tail) == 0 || len(tail) > tailLines {
				t.Errorf("tail has %d lines", len(tail))
			}
		})
	}
}

// TestLineWriterTailAfterClip: the error tail shows the end of the output, past the clip.
func TestLineWriterTailAfterClip(t *testing.T) {
	var sink logSink
	w := &lineWriter{emit: sink.emit}
	w.Write(bytes.Repeat([]byte("filler filler filler\n"), 200_000))
	w.Write([]byte("the real error\n"))
	w.Flush()
	tail := w.Tail()
	if tail[len(tail)-1] != "the real error" {
		t.Errorf("tail ends with %q, want the last line", tail[len(tail)-1])
	}
}

func TestKeyOfInvalidUTF8(t *testing.T) {
	pairs := [][2][]any{
		{{"copy", "a\xff"}, {"copy", "a\xfe"}},
		{{[]string{"a\xff"}}, {[]string{"a\xfe"}}},
		{{"a", "b"}, {"ab"}},
		{{[]string{"a", "b"}}, {[]string{"a"}, []string{"b"}}},
		{{"1"}, {1}},
		{{true}, {"true"}},
		{{nil}, {""}},
		{{[]any{"x", []string{"y"}}}, {[]any{[]string{"x"}, "y"}}},
	}
	for _, p := range pairs {
		if keyOf(p[0]...) == keyOf(p[1]...) {
			t.Errorf("keyOf(%q) == keyOf(%q)", p[0], p[1])
		}
	}
	if keyOf("x", []string{"y"}, int64(3)) != keyOf("x", []string{"y"}, int64(3)) {
		t.Error("keyOf is not deterministic")
	}
}

// TestKeyOfInjective: distinct lists of (arbitrary byte) strings get distinct keys.
func TestKeyOfInjective(t *testing.T) {
	f := func(a, b [][]byte) bool {
		sa, sb := toStrings(a), toStrings(b)
		if fmt.Sprintf("%q", sa) == fmt.Sprintf("%q", sb) {
			return keyOf(sa) == keyOf(sb)
		}
		return keyOf(sa) != keyOf(sb) && keyOf(sa, "x") != keyOf(sb, "x")
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func FuzzKeyOf(f *testing.F) {
	f.Add("a\xff", "a\xfe")
	f.Add("ab", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a != b && keyOf(a) == keyOf(b) {
			t.Fatalf("keyOf(%q) == keyOf(%q)", a, b)
		}
		if a != b && keyOf([]string{a, b}) == keyOf([]string{b, a}) {
			t.Fatalf("keyOf([%q %q]) is symmetric", a, b)
		}
	})
}
