// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestQuantizeRoundsHalfToEvenLikePython(t *testing.T) {
	tests := []struct {
		x    float64
		want int64
	}{
		{0.8, 800000},
		{0.0000005, 0}, // 0.5 millionth: half to even
		{0.0000015, 2}, // 1.5 millionths
		{-0.0000025, -2},
		{123, 123000000},
		{1e12, 1e18},
	}
	for _, tt := range tests {
		got, ok := Quantize(tt.x)
		require.True(t, ok, "%v", tt.x)
		assert.Equal(t, tt.want, got, "%v", tt.x)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1.0000001e12} {
		_, ok := Quantize(bad)
		assert.False(t, ok, "%v", bad)
	}
}

func TestMeanMatchesThePythonDocumentedExample(t *testing.T) {
	// Python: MeanStats.of([0.7, 0.8, 0.85]).model_dump_json()
	s := New(Mean)
	for _, x := range []float64{0.7, 0.8, 0.85} {
		q, ok := Quantize(x)
		require.True(t, ok)
		s.AddValue(q)
	}
	got, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind": "mean", "n": 3, "sum": "2350000", "sum_sq": "1852500000000"}`, string(got))
	est, ok := s.Estimate()
	require.True(t, ok)
	assert.InDelta(t, 2.35/3, est, 1e-15)

	// Python: MeanStats.of([0.0000005, 0.0000015, -0.0000025, 0.1 + 0.2, 2.675])
	s = New(Mean)
	for _, x := range []float64{0.0000005, 0.0000015, -0.0000025, 0.1 + 0.2, 2.675} {
		q, ok := Quantize(x)
		require.True(t, ok)
		s.AddValue(q)
	}
	got, err = json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind": "mean", "n": 5, "sum": "2975000", "sum_sq": "7245625000008"}`, string(got))
}

func TestSumsGrowBeyondSixtyFourBits(t *testing.T) {
	s := New(Mean)
	for range 100 {
		s.AddValue(1e18)
	}
	assert.Equal(t, "100000000000000000000", s.Sum().String())
	assert.Equal(t, "100000000000000000000000000000000000000", s.SumSq().String())

	var back Stat
	data, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, 0, back.SumSq().Cmp(s.SumSq()))
}

func TestProportionJSONAndMerge(t *testing.T) {
	a, b := New(Proportion), New(Proportion)
	a.AddOutcome(true)
	a.AddOutcome(false)
	b.AddOutcome(true)
	a.Merge(b)
	got, err := json.Marshal(a)
	require.NoError(t, err)
	assert.JSONEq(t, `{"kind": "proportion", "n": 3, "successes": 2}`, string(got))

	c := a.Clone()
	c.AddOutcome(true)
	assert.Equal(t, int64(3), a.N, "clones are independent")

	var back Stat
	require.NoError(t, json.Unmarshal(got, &back))
	assert.Equal(t, int64(2), back.Successes)
	require.Error(t, json.Unmarshal([]byte(`{"kind": "median"}`), &back))
	require.Error(t, json.Unmarshal([]byte(`{"kind": "mean", "n": 1, "sum": "x", "sum_sq": "1"}`), &back))
}

func TestMomentsMatchThePythonEngine(t *testing.T) {
	// Python: proportion_moments(500, 469)
	m, ok := (&Stat{Kind: Proportion, N: 500, Successes: 469}).Moments()
	require.True(t, ok)
	assert.Equal(t, Moments{N: 500, Estimate: 0.938, Variance: 0.05892107999569723}, m)
	_, ok = New(Proportion).Moments()
	assert.False(t, ok, "no sample")

	// Python: MeanStats.of([500, 520, 480, 510]).variance
	s := New(Mean)
	for _, x := range []float64{500, 520, 480, 510} {
		q, _ := Quantize(x)
		s.AddValue(q)
	}
	m, ok = s.Moments()
	require.True(t, ok)
	assert.Equal(t, Moments{N: 4, Estimate: 502.5, Variance: 291.6666666666667}, m)

	one := New(Mean)
	one.AddValue(1)
	_, ok = one.Moments()
	assert.False(t, ok, "a mean needs two samples for a variance")
	_, ok = one.Variance()
	assert.False(t, ok)

	pooled := Sum(s, one)
	assert.Equal(t, int64(5), pooled.N)
	assert.Equal(t, int64(4), s.N, "Sum leaves its arguments unchanged")
	pooled.Reset()
	assert.Zero(t, pooled.N)
	assert.Equal(t, 0, pooled.Sum().Sign())
}

func TestUnmarshalRefusesImpossibleStatistics(t *testing.T) {
	var s Stat
	for _, bad := range []string{
		`{"kind": "proportion", "n": 2, "successes": 3}`,
		`{"kind": "proportion", "n": -1, "successes": 0}`,
		`{"kind": "mean", "n": 0, "sum": "1", "sum_sq": "1"}`,
		`{"kind": "mean", "n": 2, "sum": "10", "sum_sq": "1"}`,
		`{"kind": "mean", "n": 2, "sum": "0", "sum_sq": "-1"}`,
	} {
		require.Error(t, json.Unmarshal([]byte(bad), &s), bad)
	}
}
