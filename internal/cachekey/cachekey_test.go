package cachekey

import (
	"fmt"
	"testing"
	"testing/quick"
)

func TestOfInvalidUTF8(t *testing.T) {
	pairs := [][2][]any{
		{{"copy", "a\xff"}, {"copy", "a\xfe"}},
		{{[]string{"a\xff"}}, {[]string{"a\xfe"}}},
		{{"a", "b"}, {"ab"}},
		{{[]string{"a", "b"}}, {[]string{"a"}, []string{"b"}}},
		{{"1"}, {1}},
		{{true}, {"true"}},
		{{nil}, {""}},
		{{[]any{"x", []string{"y"}}}, {[]any{[]string{"x"}, "y"}}},
	}
	for _, p := range pairs {
		if Of(p[0]...) == Of(p[1]...) {
			t.Errorf("Of(%q) == Of(%q)", p[0], p[1])
		}
	}
	if Of("x", []string{"y"}, int64(3)) != Of("x", []string{"y"}, int64(3)) {
		t.Error("Of is not deterministic")
	}
}

// TestOfInjective: distinct lists of (arbitrary byte) strings get distinct keys.
func TestOfInjective(t *testing.T) {
	f := func(a, b [][]byte) bool {
		sa, sb := toStrings(a), toStrings(b)
		if fmt.Sprintf("%q", sa) == fmt.Sprintf("%q", sb) {
			return Of(sa) == Of(sb)
		}
		return Of(sa) != Of(sb) && Of(sa, "x") != Of(sb, "x")
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func FuzzOf(f *testing.F) {
	f.Add("a\xff", "a\xfe")
	f.Add("ab", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a != b && Of(a) == Of(b) {
			t.Fatalf("Of(%q) == Of(%q)", a, b)
		}
		if a != b && Of([]string{a, b}) == Of([]string{b, a}) {
			t.Fatalf("Of([%q %q]) is symmetric", a, b)
		}
	})
}
