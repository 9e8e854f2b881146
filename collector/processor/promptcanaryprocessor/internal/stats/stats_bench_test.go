// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import "testing"

// BenchmarkAddValue measures the span path's cost of one score sample.
func BenchmarkAddValue(b *testing.B) {
	s := New(Mean)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.AddValue(int64(i%1000)*1000 + 850000)
	}
}
