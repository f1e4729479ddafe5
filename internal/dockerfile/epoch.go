package dockerfile

import (
	"fmt"
	"strconv"
	"time"
)

// SourceDateEpochArg is the build arg (and environment variable) that carries the epoch.
const SourceDateEpochArg = "SOURCE_DATE_EPOCH"

// maxEpoch is the last second that an image config's RFC 3339 times can hold.
var maxEpoch = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()

// ParseSourceDateEpoch parses a SOURCE_DATE_EPOCH value: whole seconds since
// 1970, from 0 to the end of year 9999. "" gives nil, as if it were unset.
func ParseSourceDateEpoch(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxEpoch {
		return nil, fmt.Errorf("invalid %s %q: want whole seconds since 1970 (0 to %d)", SourceDateEpochArg, s, maxEpoch)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// WholeSeconds returns a copy of epoch in UTC, without its fraction of a second.
func WholeSeconds(epoch *time.Time) *time.Time {
	if epoch == nil {
		return nil
	}
	t := epoch.Truncate(time.Second).UTC()
	return &t
}

// WithEpochArg returns a copy of args with SOURCE_DATE_EPOCH set to epoch, if given.
func WithEpochArg(args map[string]string, epoch *time.Time) map[string]string {
	out := make(map[string]string, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	if epoch != nil {
		out[SourceDateEpochArg] = strconv.FormatInt(epoch.Unix(), 10)
	}
	return out
}

// SourceDateEpoch is the epoch the plan gives a build that was not handed one:
// the SOURCE_DATE_EPOCH build arg, else the global ARG default; nil for none
// or for "context" (as BuildKit does for a local context).
func (p *Plan) SourceDateEpoch() (*time.Time, error) {
	v, ok := p.BuildArgs[SourceDateEpochArg]
	if !ok {
		v = p.GlobalArgs()[SourceDateEpochArg]
	}
	if v == "context" {
		return nil, nil
	}
	return ParseSourceDateEpoch(v)
}
