// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"math"
	"strconv"
	"strings"
)

// pyG formats f as Python's format(f, "g") does, so that summaries read the same in both
// engines.
func pyG(f float64) string { return pyGPrec(f, 6, false) }

// pyGPrec formats f as Python's format(f, ".<prec>g"), with a leading "+" when plus is set and
// f is not negative.
func pyGPrec(f float64, prec int, plus bool) string {
	var s string
	switch {
	case math.IsInf(f, 1):
		s = "inf"
	case math.IsInf(f, -1):
		s = "-inf"
	case math.IsNaN(f):
		s = "nan"
	default:
		s = strconv.FormatFloat(f, 'g', prec, 64)
		// Go writes exponents with at least two digits, as Python does; trailing zeros are
		// already removed by 'g'.
	}
	if plus && !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}

// pyQuote writes a string as Python's repr does for plain text: in single quotes.
func pyQuote(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
