package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slimbuild/slimbuild/internal/engine"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter renders build events: "plain" prints a line per event with RUN
// output, "tty" keeps a live view of running steps, "quiet" prints nothing.
type progressPrinter struct {
	mode  string
	out   io.Writer
	start time.Time

	mu      sync.Mutex
	running map[string]runningStep // by stage
	order   []string
	drawn   int
	tail    map[string]string
	stop    chan struct{}
	done    chan struct{}
}

type runningStep struct {
	text  string
	start time.Time
}

func newProgress(mode string, out io.Writer) (*progressPrinter, error) {
	switch mode {
	case "", "auto":
		mode = "plain"
		if f, ok := out.(*os.File); ok && isTerminal(f) {
			mode = "tty"
		}
	case "plain", "quiet", "tty":
	default:
		return nil, fmt.Errorf("--progress=%s: use auto, plain, tty or quiet", mode)
	}
	p := &progressPrinter{mode: mode, out: out, start: time.Now(), running: map[string]runningStep{}, tail: map[string]string{}}
	if mode == "tty" {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.ticker()
	}
	return p, nil
}

func (p *progressPrinter) ticker() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// Close stops the live view.
func (p *progressPrinter) Close() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.clear()
		p.mu.Unlock()
	}
}

func stepLabel(e engine.Event) string {
	return fmt.Sprintf("[%s %d/%d] %s", e.Stage, e.Step, e.Total, oneLine(e.Text))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// Event handles one build event.
func (p *progressPrinter) Event(e engine.Event) {
	if p.mode == "quiet" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "plain" {
		switch e.Kind {
		case engine.StepStart:
			fmt.Fprintf(p.out, "%s\n", stepLabel(e))
		case engine.StepCached:
			fmt.Fprintf(p.out, "%s CACHED\n", stepLabel(e))
		case engine.StepDone:
			fmt.Fprintf(p.out, "%s DONE %s\n", stepLabel(e), secs(e.Duration))
		case engine.StepLog:
			fmt.Fprintf(p.out, "#%s %s\n", e.Stage, e.Text)
		case engine.Info:
			fmt.Fprintf(p.out, "%s\n", e.Text)
		}
		return
	}
	p.clear()
	switch e.Kind {
	case engine.StepStart:
		if _, ok := p.running[e.Stage]; !ok {
			p.order = append(p.order, e.Stage)
		}
		p.running[e.Stage] = runningStep{text: stepLabel(e), start: e.Time}
		p.tail[e.Stage] = ""
	case engine.StepCached:
		fmt.Fprintf(p.out, " => CACHED %s\n", stepLabel(e))
	case engine.StepDone:
		fmt.Fprintf(p.out, " => %s %s\n", stepLabel(e), secs(e.Duration))
		p.remove(e.Stage)
	case engine.StepLog:
		p.tail[e.Stage] = e.Text
	case engine.Info:
		fmt.Fprintf(p.out, "%s\n", e.Text)
	case engine.StageDone:
		p.remove(e.Stage)
	}
	p.redraw()
}

func (p *progressPrinter) remove(stage string) {
	delete(p.running, stage)
	delete(p.tail, stage)
	for i, s := range p.order {
		if s == stage {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

// clear erases the live lines drawn last.
func (p *progressPrinter) clear() {
	for ; p.drawn > 0; p.drawn-- {
		fmt.Fprint(p.out, "\x1b[1A\x1b[2K")
	}
}

func (p *progressPrinter) redraw() {
	p.clear()
	fmt.Fprintf(p.out, "[+] Building %s\n", secs(time.Since(p.start)))
	p.drawn = 1
	for _, s := range p.order {
		r := p.running[s]
		fmt.Fprintf(p.out, " => %s %s\n", r.text, secs(time.Since(r.start)))
		p.drawn++
		if t := p.tail[s]; t != "" {
			fmt.Fprintf(p.out, "    \x1b[2m%s\x1b[0m\n", oneLine(t))
			p.drawn++
		}
	}
}
