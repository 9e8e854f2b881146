// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

func TestTheMixtureMatchesThePythonEngine(t *testing.T) {
	// Python: mixture_centre(0.05 / 3, 1e-4) and confidence_radius(0.0004, 0.0002, 0.01)
	assert.InDelta(t, 0.02861588566590977, MixtureCentre(0.05/3, 1e-4), 1e-17)
	assert.InDelta(t, 0.06436072255941379, ConfidenceRadius(0.0004, 0.0002, 0.01), 1e-16)
	// Python: compare_rates(ProportionStats(n=400, successes=380), ProportionStats(n=4000,
	// successes=3960), harmful=decrease, ratio=2.0, alpha=0.05, target_samples=500)
	test, ok, err := CompareRates(proportion(400, 380), proportion(4000, 3960), policy.Decrease, 2.0, 0.05, 500)
	require.NoError(t, err)
	require.True(t, ok)
	assert.InDelta(t, 0.030000000000000027, test.Estimate, 1e-15)
	assert.InDelta(t, 0.0001312917943507954, test.Variance, 1e-18)
	assert.InDelta(t, 0.0001771774714536478, test.TargetVariance, 1e-18)
	assert.InDelta(t, 0.029125030251520256, test.Radius, 1e-15)
	assert.InDelta(t, 3.206111441363275, test.Statistic, 1e-12)
	assert.True(t, test.Breach)
}

func TestTheStatisticCrossesItsThresholdExactlyWhenTheBoundCrossesTheLimit(t *testing.T) {
	const alpha, variance, target = 0.01, 0.0004, 0.0002
	r := ConfidenceRadius(variance, target, alpha)
	// At distance r from the limit, ln Lambda equals ln(1/alpha).
	assert.InDelta(t, -math.Log(alpha), LogMixtureRatio(r, variance, target, alpha), 1e-12)
	assert.True(t, math.IsInf(ConfidenceRadius(0, target, alpha), 1))
	assert.True(t, math.IsInf(ConfidenceRadius(variance, 0, alpha), 1))

	for _, harmful := range []policy.Direction{policy.Decrease, policy.Increase} {
		sign := 1.0
		if harmful == policy.Decrease {
			sign = -1
		}
		inside, ok := MixtureTest(sign*(r*0.99), variance, target, 0, harmful, alpha)
		require.True(t, ok)
		assert.False(t, inside.Breach)
		assert.Less(t, inside.Statistic, inside.Threshold)
		outside, ok := MixtureTest(sign*(r*1.01), variance, target, 0, harmful, alpha)
		require.True(t, ok)
		assert.True(t, outside.Breach)
		assert.Greater(t, outside.Statistic, outside.Threshold)
	}
	_, ok := MixtureTest(1, 0, 1, 0, policy.Increase, alpha)
	assert.False(t, ok, "no variance, no test")
}

func TestARatioOfOneIsTheMarginOfZeroSeenFromTheFailures(t *testing.T) {
	canary, stable := proportion(300, 282), proportion(3000, 2970)
	margin, ok := CompareToStable(canary, stable, policy.Decrease, 0, 0.05, 500)
	require.True(t, ok)
	rates, ok, err := CompareRates(canary, stable, policy.Decrease, 1, 0.05, 500)
	require.NoError(t, err)
	require.True(t, ok)
	assert.InDelta(t, -margin.Estimate, rates.Estimate, 1e-15)
	assert.InDelta(t, margin.Radius, rates.Radius, 1e-15)
	assert.InDelta(t, -margin.Bound, rates.Bound, 1e-15)
	assert.Equal(t, margin.Breach, rates.Breach)
}

func TestComparisonsNeedData(t *testing.T) {
	_, ok := CompareToStable(stats.New(stats.Proportion), proportion(10, 9), policy.Decrease, 0, 0.05, 500)
	assert.False(t, ok)
	_, ok = CompareToThreshold(mean(0.5), policy.Decrease, 0.3, 0.05, 500)
	assert.False(t, ok, "a mean needs two samples")
	test, ok := CompareToThreshold(proportion(10, 10), policy.Decrease, 0.5, 0.05, 500)
	require.True(t, ok, "a proportion that always agrees still has a regularised variance")
	assert.Positive(t, test.Variance)
	_, _, err := CompareRates(mean(0.5, 0.7), mean(0.5, 0.6), policy.Decrease, 2, 0.05, 500)
	require.ErrorContains(t, err, "must count events per call")
	_, _, err = CompareRates(proportion(10, 9), proportion(10, 9), policy.Decrease, 0, 0.05, 500)
	require.ErrorContains(t, err, "ratio must be a positive number")
}
