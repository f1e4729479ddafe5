package engine

// Dating the config and history with a source date epoch; no root needed.

import (
	"encoding/json"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestImageDating checks the config created and history times of a state whose
// base image is newer than the epoch, with and without the epoch.
func TestImageDating(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0).UTC()
	baseOld := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	baseNew := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC) // after the epoch
	stepTime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	dated := func(e *time.Time) *v1.ConfigFile {
		s := &stageState{created: baseNew, epoch: e}
		s.cfg.History = []v1.History{
			{CreatedBy: "base 1", Created: v1.Time{Time: baseOld}},
			{CreatedBy: "base 2", Created: v1.Time{Time: baseNew}},
		}
		s.addHistory("ENV A=1", nil)
		st := stepTime
		s.addHistory("RUN true", &st)
		s.addHistory("CMD []", nil)
		img, err := imageOf(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := img.RawConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		var cfg v1.ConfigFile
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		return &cfg
	}
	times := func(cfg *v1.ConfigFile) []time.Time {
		var ts []time.Time
		for _, h := range cfg.History {
			ts = append(ts, h.Created.Time.UTC())
		}
		return ts
	}
	check := func(t *testing.T, cfg *v1.ConfigFile, created time.Time, history []time.Time) {
		t.Helper()
		if !cfg.Created.Time.Equal(created) {
			t.Errorf("config created %v, want %v", cfg.Created.Time, created)
		}
		got := times(cfg)
		if len(got) != len(history) {
			t.Fatalf("history times %v, want %v", got, history)
		}
		for i := range got {
			if !got[i].Equal(history[i]) {
				t.Errorf("history[%d] (%s) created %v, want %v", i, cfg.History[i].CreatedBy, got[i], history[i])
			}
		}
	}
	t.Run("epoch", func(t *testing.T) {
		// The base's history keeps its times; what the build added is the epoch.
		check(t, dated(&epoch), epoch, []time.Time{baseOld, baseNew, epoch, epoch, epoch})
	})
	t.Run("no epoch", func(t *testing.T) {
		check(t, dated(nil), stepTime, []time.Time{baseOld, baseNew, baseNew, stepTime, stepTime})
	})
}
