// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"math/big"
	"regexp"
)

// durationUnits are a duration's units in milliseconds, from the largest to the smallest:
// Prometheus's, as in the Python engine's policy module.
var durationUnits = []int64{
	365 * 86_400_000, // y
	7 * 86_400_000,   // w
	86_400_000,       // d
	3_600_000,        // h
	60_000,           // m
	1000,             // s
	1,                // ms
}

// durationPattern is the syntax of a duration: whole numbers with units from the largest to the
// smallest, each at most once ("1h30m"). It is the pattern schemas/policy.schema.json gives
// for a step's min_duration (schema_test.go compares them).
var durationPattern = regexp.MustCompile(`^(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?$`)

// durationHelp ends the message that refuses a duration.
const durationHelp = "give seconds (14400) or a duration such as 30m, 4h or 1h30m"

// parseDuration returns the seconds in a duration such as 30s, 4h or 1h30m, and false when s is
// not one. As in the Python engine, the sum is exact (integer milliseconds, of any size) and
// divided by 1000 once, rounded to the nearest float64, so that both engines read the same
// float; a sum too large for a float64 is +Inf.
func parseDuration(s string) (float64, bool) {
	m := durationPattern.FindStringSubmatch(s)
	if s == "" || m == nil {
		return 0, false
	}
	total := new(big.Int)
	for i, ms := range durationUnits {
		if m[i+1] == "" {
			continue
		}
		n, ok := new(big.Int).SetString(m[i+1], 10)
		if !ok {
			return 0, false
		}
		total.Add(total, n.Mul(n, big.NewInt(ms)))
	}
	seconds, _ := new(big.Rat).SetFrac(total, big.NewInt(1000)).Float64()
	return seconds, true
}
