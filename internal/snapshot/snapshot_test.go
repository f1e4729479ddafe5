package snapshot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOverlay(t *testing.T) {
	tests := []struct {
		name   string
		lowers []string
		want   []Mount
	}{
		{
			name: "no lowers binds upper",
			want: []Mount{{Type: "bind", Source: "/s/up", Options: []string{"rbind", "rw"}}},
		},
		{
			name:   "one lower",
			lowers: []string{"/s/1"},
			want: []Mount{{Type: "overlay", Source: "overlay", Options: []string{
				"lowerdir=/s/1", "upperdir=/s/up", "workdir=/s/work",
				"index=off", "redirect_dir=off", "metacopy=off", "volatile",
			}}},
		},
		{
			name:   "lowers keep topmost-first order",
			lowers: []string{"/s/3", "/s/2", "/s/1"},
			want: []Mount{{Type: "overlay", Source: "overlay", Options: []string{
				"lowerdir=/s/3:/s/2:/s/1", "upperdir=/s/up", "workdir=/s/work",
				"index=off", "redirect_dir=off", "metacopy=off", "volatile",
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Overlay(tt.lowers, "/s/up", "/s/work")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Overlay() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	tests := []struct {
		name   string
		lowers []string
		want   []Mount
	}{
		{name: "none"},
		{
			name:   "one lower is a read-only bind",
			lowers: []string{"/s/1"},
			want:   []Mount{{Type: "bind", Source: "/s/1", Options: []string{"rbind", "ro"}}},
		},
		{
			name:   "several lowers are an overlay without upper",
			lowers: []string{"/s/2", "/s/1"},
			want:   []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/s/2:/s/1"}}},
		},
		{
			name:   "a repeated lower is listed once, where it is topmost",
			lowers: []string{"/s/1", "/s/2", "/s/1", "/s/0"},
			want:   []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/s/1:/s/2:/s/0"}}},
		},
		{
			name:   "one lower repeated is a bind",
			lowers: []string{"/s/1", "/s/1"},
			want:   []Mount{{Type: "bind", Source: "/s/1", Options: []string{"rbind", "ro"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ReadOnly(tt.lowers)); diff != "" {
				t.Errorf("ReadOnly() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRelativeOverlayData(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		wantDir string
		want    []string
	}{
		{
			name:    "siblings",
			opts:    []string{"lowerdir=/a/s/2/fs:/a/s/1/fs", "upperdir=/a/s/3/fs", "workdir=/a/s/3/work", "index=off"},
			wantDir: "/a/s",
			want:    []string{"lowerdir=2/fs:1/fs", "upperdir=3/fs", "workdir=3/work", "index=off"},
		},
		{
			name:    "common prefix is not a directory boundary",
			opts:    []string{"lowerdir=/a/snap1:/a/snap2"},
			wantDir: "/a",
			want:    []string{"lowerdir=snap1:snap2"},
		},
		{
			name:    "only root in common",
			opts:    []string{"lowerdir=/x/1:/y/2"},
			wantDir: "/",
			want:    []string{"lowerdir=x/1:y/2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, got, err := relativeOverlayData(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if dir != tt.wantDir {
				t.Errorf("dir = %q, want %q", dir, tt.wantDir)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("options mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := relativeOverlayData([]string{"lowerdir=rel:/abs"}); err == nil {
		t.Error("relative lowerdir accepted")
	}
}

func TestParseOptions(t *testing.T) {
	flags, data := parseOptions([]string{"rbind", "ro", "nosuid", "lowerdir=/a:/b", "rw", "index=off"})
	const want = 0x4000 | 0x1000 | 0x2 // MS_REC|MS_BIND|MS_NOSUID, "rw" cleared "ro"
	if flags != want {
		t.Errorf("flags = %#x, want %#x", flags, want)
	}
	if data != "lowerdir=/a:/b,index=off" {
		t.Errorf("data = %q", data)
	}
}

func TestWithoutVolatile(t *testing.T) {
	ms := Overlay([]string{"/s/1"}, "/s/up", "/s/work")
	got := withoutVolatile(ms)
	want := []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=/s/1", "upperdir=/s/up", "workdir=/s/work",
		"index=off", "redirect_dir=off", "metacopy=off",
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withoutVolatile() mismatch (-want +got):\n%s", diff)
	}
	if ms[0].Options[len(ms[0].Options)-1] != Volatile {
		t.Errorf("withoutVolatile changed its argument: %v", ms[0].Options)
	}
}
