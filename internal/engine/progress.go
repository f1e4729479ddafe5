package engine

import "time"

// EventKind says what happened to a step.
type EventKind int

const (
	StepStart  EventKind = iota // a step began
	StepCached                  // a step was served from the cache
	StepDone                    // a step finished
	StepLog                     // a line of a RUN step's output
	StageDone                   // a whole stage finished
	Info                        // a message about the build (pulls, warnings)
)

// Event is one progress report. Stage is the stage's name or index; Step is
// 1-based within the stage, Total the stage's step count.
type Event struct {
	Kind     EventKind
	Stage    string
	Step     int
	Total    int
	Text     string // the instruction, the log line, or the message
	Duration time.Duration
	Time     time.Time
}

// Progress receives events; it is called from several goroutines at once.
type Progress func(Event)
