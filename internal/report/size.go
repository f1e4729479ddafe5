package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a lower-cased unit suffix to its multiplier. SI units (kB, MB, GB, TB) are
// powers of 1000, IEC units (KiB, MiB, GiB, TiB) powers of 1024; a bare number is bytes.
var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1e3,
	"kb":  1e3,
	"m":   1e6,
	"mb":  1e6,
	"g":   1e9,
	"gb":  1e9,
	"t":   1e12,
	"tb":  1e12,
	"ki":  1 << 10,
	"kib": 1 << 10,
	"mi":  1 << 20,
	"mib": 1 << 20,
	"gi":  1 << 30,
	"gib": 1 << 30,
	"ti":  1 << 40,
	"tib": 1 << 40,
}

// ParseSize parses a size such as "1234", "100kB", "2.2MB" or "5MiB" into bytes. SI units
// are powers of 1000 and IEC units (KiB, MiB, …) powers of 1024; units are case-insensitive
// and may be separated from the number by spaces.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("parsing size %q: no number", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("parsing size %q: unknown unit %q (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing size %q: %w", s, err)
	}
	v := math.Round(f * mult)
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
