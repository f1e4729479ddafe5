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

// TestPlanSourceDateEpoch: without an epoch given (engine.Options.SourceDateEpoch), the build arg and then a
// global ARG default give the epoch, as in BuildKit.
func TestPlanSourceDateEpoch(t *testing.T) {
	for _, c := range []struct {
		name, dockerfile string
		buildArgs        map[string]string
		want             int64 // -1: nil
		wantErr          bool
	}{
		{name: "none", dockerfile: "FROM scratch\n", want: -1},
		{name: "build arg", dockerfile: "FROM scratch\n", buildArgs: map[string]string{"SOURCE_DATE_EPOCH": "42"}, want: 42},
		{name: "global default", dockerfile: "ARG SOURCE_DATE_EPOCH=1704067200\nFROM scratch\n", want: 1704067200},
		{name: "build arg over default", dockerfile: "ARG SOURCE_DATE_EPOCH=1704067200\nFROM scratch\n", buildArgs: map[string]string{"SOURCE_DATE_EPOCH": "7"}, want: 7},
		{name: "context", dockerfile: "FROM scratch\n", buildArgs: map[string]string{"SOURCE_DATE_EPOCH": "context"}, want: -1},
		{name: "empty", dockerfile: "FROM scratch\n", buildArgs: map[string]string{"SOURCE_DATE_EPOCH": ""}, want: -1},
		{name: "bad", dockerfile: "ARG SOURCE_DATE_EPOCH=yesterday\nFROM scratch\n", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			parsed, err := Parse("Dockerfile", strings.NewReader(c.dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := parsed.Plan(Options{BuildArgs: c.buildArgs})
			if err != nil {
				t.Fatal(err)
			}
			got, err := plan.SourceDateEpoch()
			switch {
			case c.wantErr:
				if err == nil {
					t.Errorf("epoch %v, want an error", got)
				}
			case err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.want < 0 && got != nil:
				t.Errorf("epoch %v, want none", got)
			case c.want >= 0 && (got == nil || got.Unix() != c.want):
				t.Errorf("epoch %v, want %d", got, c.want)
			}
		})
	}
}

func TestWholeSecondsAndEpochArg(t *testing.T) {
	if WholeSeconds(nil) != nil {
		t.Error("WholeSeconds(nil) is not nil")
	}
	in := time.Date(2024, 1, 2, 3, 4, 5, 999_000_000, time.FixedZone("x", 3600))
	got := WholeSeconds(&in)
	if got.Location() != time.UTC || got.Nanosecond() != 0 || got.Unix() != in.Unix() {
		t.Errorf("WholeSeconds(%v) = %v, want %d in UTC without its fraction", in, got, in.Unix())
	}
	args := map[string]string{"A": "1"}
	with := WithEpochArg(args, got)
	if with[SourceDateEpochArg] != "1704161045" || with["A"] != "1" {
		t.Errorf("WithEpochArg gave %v", with)
	}
	if _, ok := args[SourceDateEpochArg]; ok {
		t.Error("WithEpochArg changed its argument")
	}
	if _, ok := WithEpochArg(args, nil)[SourceDateEpochArg]; ok {
		t.Error("WithEpochArg set the arg without an epoch")
	}
}
