package runtime

// Root-free tests of LineWriter's bounds.

import (
	"bytes"
	"strings"
	"testing"
)

// logSink collects what a LineWriter emits, keeping only totals and the last lines.
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
		writes    func(w *LineWriter)
		wantLines int  // when > 0, exactly this many lines
		clipped   bool // the output ends with the notice
	}{
		{"short lines", func(w *LineWriter) { w.Write([]byte("one\ntwo\r\nthree")) }, 3, false},
		{"100 MB on one line", func(w *LineWriter) {
			for i := 0; i < 100_000_000/(32<<10); i++ {
				w.Write(chunk('a', 32<<10))
			}
			w.Write([]byte("\n"))
		}, 0, true},
		{"100 MB unterminated", func(w *LineWriter) {
			for i := 0; i < 100_000_000/(32<<10); i++ {
				w.Write(chunk('a', 32<<10))
			}
		}, 0, true},
		{"50 MB of lines", func(w *LineWriter) {
			for i := 0; i < 50_000_000/(17*2000); i++ {
				w.Write(lines(2000))
			}
		}, 0, true},
		{"2 MiB exactly", func(w *LineWriter) {
			w.Write(append(chunk('b', maxLogLine-1), '\n'))
			w.Write(bytes.Repeat(append(chunk('b', maxLogLine-1), '\n'), maxStepLog/maxLogLine-1))
		}, maxStepLog / maxLogLine, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink logSink
			w := NewLineWriter(sink.emit)
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
	w := NewLineWriter(sink.emit)
	w.Write(bytes.Repeat([]byte("filler filler filler\n"), 200_000))
	w.Write([]byte("the real error\n"))
	w.Flush()
	tail := w.Tail()
	if tail[len(tail)-1] != "the real error" {
		t.Errorf("tail ends with %q, want the last line", tail[len(tail)-1])
	}
}
