// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"math"
	"strconv"
	"strings"
)

// pyRepr writes a float as Python's repr does (1.0, 0.05, 1e-07, inf), so that messages read
// the same in both engines.
func pyRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[:1]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		if sign == "+" {
			return mant + "e+" + digits
		}
		return mant + "e-" + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func pyList(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = pyRepr(f)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyQuote writes a string as Python's repr does for plain text: in single quotes.
func pyQuote(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
