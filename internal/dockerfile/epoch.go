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
