package engine

// Tests of the engine's input limits and cache key encoding that need no root.

import (
	"fmt"
	"testing"
	"testing/quick"
)

func TestKeyOfInvalidUTF8(t *testing.T) {
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
		if keyOf(p[0]...) == keyOf(p[1]...) {
			t.Errorf("keyOf(%q) == keyOf(%q)", p[0], p[1])
		}
	}
	if keyOf("x", []string{"y"}, int64(3)) != keyOf("x", []string{"y"}, int64(3)) {
		t.Error("keyOf is not deterministic")
	}
}

// TestKeyOfInjective: distinct lists of (arbitrary byte) strings get distinct keys.
func TestKeyOfInjective(t *testing.T) {
	f := func(a, b [][]byte) bool {
		sa, sb := toStrings(a), toStrings(b)
		if fmt.Sprintf("%q", sa) == fmt.Sprintf("%q", sb) {
			return keyOf(sa) == keyOf(sb)
		}
		return keyOf(sa) != keyOf(sb) && keyOf(sa, "x") != keyOf(sb, "x")
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

func FuzzKeyOf(f *testing.F) {
	f.Add("a\xff", "a\xfe")
	f.Add("ab", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a != b && keyOf(a) == keyOf(b) {
			t.Fatalf("keyOf(%q) == keyOf(%q)", a, b)
		}
		if a != b && keyOf([]string{a, b}) == keyOf([]string{b, a}) {
			t.Fatalf("keyOf([%q %q]) is symmetric", a, b)
		}
	})
}
