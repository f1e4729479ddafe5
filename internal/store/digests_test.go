package store

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestDigestsIn: the scanner finds exactly what the regexp it replaces
// finds (GC and leases keep blobs by it: a digest missed would let GC take a
// blob that a cache value still names).
func TestDigestsIn(t *testing.T) {
	re := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	a, b := strings.Repeat("a", 64), strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct{ name, in string }{
		{"none", "no digest here"},
		{"one", `{"layer":"sha256:` + a + `"}`},
		{"two adjacent", "sha256:" + a + "sha256:" + b},
		{"longer hex run", "sha256:" + a + "ff"},
		{"upper case", "sha256:" + strings.ToUpper(a)},
		{"short", "sha256:" + a[:63]},
		{"prefix inside a match's way", "sha256:sha256:" + b},
		{"bad digit then good", "sha256:" + a[:10] + "g" + a[:53] + " sha256:" + b},
		{"at the end", "x sha256:"},
		{"empty", ""},
	} {
		var want []v1.Hash
		for _, m := range re.FindAllString(tc.in, -1) {
			want = append(want, v1.Hash{Algorithm: "sha256", Hex: m[len("sha256:"):]})
		}
		var got []v1.Hash
		digestsIn([]byte(tc.in), func(h v1.Hash) { got = append(got, h) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-regexp +digestsIn):\n%s", tc.name, diff)
		}
	}
}

// TestValidStatCacheName: only 8 to 64 lowercase hex digits name a stat
// cache (the name becomes a file name in the store).
func TestValidStatCacheName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"09f952229cd415e735d9bdbd", true},
		{"01234567", true},
		{strings.Repeat("f", 64), true},
		{"0123456", false},
		{strings.Repeat("f", 65), false},
		{"../../etc", false},
		{"0123456/", false},
		{"ABCDEF01", false},
		{"", false},
	} {
		if got := validStatCacheName(tc.name); got != tc.ok {
			t.Errorf("%q: %v, want %v", tc.name, got, tc.ok)
		}
	}
}
