package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizePrefixes are the unit prefixes a size may carry, lower-cased, with their
// power: k is 1000 (or 1024), m 1000² (or 1024²), and so on.
var sizePrefixes = map[string]int{"": 0, "k": 1, "m": 2, "g": 3, "t": 4}

// ParseSize parses a size such as "1234", "100kB", "2.2MB" or "5MiB" into bytes. SI units
// are powers of 1000 and IEC units (KiB, MiB, …) powers of 1024; units are case-insensitive
// and may be separated from the number by spaces.
func ParseSize(s string) (int64, error) { return parseSize(s, 1000) }

// ParseRAMSize parses a size as docker's memory flags do (--shm-size, --memory):
// every unit is a power of 1024, "128m" and "128MiB" alike. The syntax is ParseSize's.
func ParseRAMSize(s string) (int64, error) { return parseSize(s, 1024) }

// parseSize is the one size parser: si is what k, m, g and t multiply by (1000,
// or 1024 in docker's memory flags); an "i" (KiB, Mi) always means 1024.
func parseSize(s string, si float64) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("parsing size %q: no number", s)
	}
	prefix, base, iec := strings.TrimSuffix(unit, "b"), si, false
	if p, ok := strings.CutSuffix(prefix, "i"); ok {
		prefix, base, iec = p, 1024, true
	}
	pow, ok := sizePrefixes[prefix]
	if !ok || iec && pow == 0 {
		return 0, fmt.Errorf("parsing size %q: unknown unit %q (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing size %q: %w", s, err)
	}
	v := math.Round(f * math.Pow(base, float64(pow)))
	if math.IsInf(v, 0) || math.IsNaN(v) || v >= math.MaxInt64 {
		return 0, fmt.Errorf("parsing size %q: too large", s)
	}
	return int64(v), nil
}

// HumanSize formats n bytes with SI units: "812 B", "2.2 MB", "134 MB", "1.3 GB".
func HumanSize(n int64) string {
	if n < 0 {
		return "-" + HumanSize(-n)
	}
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	u := -1
	for f >= 999.95 && u < len(units)-1 {
		f /= 1000
		u++
	}
	if f < 99.95 {
		return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[u]
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + " " + units[u]
}

// Count formats n with thousands separators: 1284 → "1,284".
func Count(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Percent formats a reduction percentage truncated (not rounded) to one decimal, so that a
// 99.96 % reduction never shows as 100 %.
func Percent(p float64) string {
	return strconv.FormatFloat(math.Trunc(p*10)/10, 'f', 1, 64) + " %"
}
