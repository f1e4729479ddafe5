package runtime

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Limits of a container's log (a RUN step's). A line is cut at maxLogLine bytes (the rest is
// counted, not kept). Once a step has printed more than maxStepLog bytes, the
// rest of its output is read and dropped after one clipNotice, as BuildKit
// does with its default step log limit; the tail for errors is still kept.
const (
	maxLogLine = 64 << 10
	maxStepLog = 2 << 20
	tailLines  = 15
	clipNotice = "[output clipped, log limit 2MiB reached]"
)

// LineWriter splits a container's output into lines, emits each within the
// limits above, and keeps the last ones for an error message. Its memory is
// bounded whatever is written. It is safe for concurrent writes (stdout and
// stderr may share it).
type LineWriter struct {
	mu      sync.Mutex
	cur     []byte // the line being read, at most maxLogLine bytes
	cut     int64  // bytes of that line past maxLogLine
	total   int64  // bytes written so far
	clipped bool   // the step's log limit was reached
	tail    []string
	emit    func(string)
}

var _ io.Writer = (*LineWriter)(nil)

// NewLineWriter returns a LineWriter that passes each line to emit.
func NewLineWriter(emit func(line string)) *LineWriter {
	return &LineWriter{emit: emit}
}

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i+1]
		}
		w.total += int64(len(part))
		part = bytes.TrimSuffix(part, []byte("\n"))
		keep := min(len(part), maxLogLine-len(w.cur))
		w.cur = append(w.cur, part[:keep]...)
		w.cut += int64(len(part) - keep)
		if i < 0 {
			break
		}
		w.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// endLine emits the line read so far, or the notice when it passes the limit.
func (w *LineWriter) endLine() {
	l := strings.TrimRight(string(w.cur), "\r")
	if w.cut > 0 {
		l += fmt.Sprintf(" [line clipped, %d more bytes]", w.cut)
	}
	w.cur, w.cut = w.cur[:0], 0
	w.tail = append(w.tail, l)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	if w.clipped {
		return
	}
	w.emit(l)
	if w.total > maxStepLog {
		w.clipped = true
		w.emit(clipNotice)
	}
}

// Flush emits a last unterminated line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cur) > 0 || w.cut > 0 {
		w.endLine()
	}
}

// Tail returns the last lines written (at most tailLines), past any clip.
func (w *LineWriter) Tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}
