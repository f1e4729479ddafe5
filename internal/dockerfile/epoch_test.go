package dockerfile

import (
	"strings"
	"testing"
	"time"
)

func TestParseSourceDateEpoch(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    int64 // -1: nil
		wantErr bool
	}{
		{in: "", want: -1},
		{in: "0", want: 0},
		{in: "1700000000", want: 1_700_000_000},
		{in: "253402300799", want: 253402300799}, // 9999-12-31T23:59:59Z
		{in: "253402300800", wantErr: true},      // year 10000 has no RFC 3339 form
		{in: "-1", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "now", wantErr: true},
		{in: " 1", wantErr: true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSourceDateEpoch(c.in)
			switch {
			case c.wantErr:
				if err == nil || !strings.Contains(err.Error(), SourceDateEpochArg) {
					t.Errorf("ParseSourceDateEpoch(%q) = %v, %v; want an error naming %s", c.in, got, err, SourceDateEpochArg)
				}
			case err != nil:
				t.Errorf("ParseSourceDateEpoch(%q): %v", c.in, err)
			case c.want < 0 && got != nil:
				t.Errorf("ParseSourceDateEpoch(%q) = %v, want nil", c.in, got)
			case c.want >= 0 && (got == nil || got.Unix() != c.want || got.Location() != time.UTC):
				t.Errorf("ParseSourceDateEpoch(%q) = %v, want %d UTC", c.in, got, c.want)
			}
		})
	}
}
