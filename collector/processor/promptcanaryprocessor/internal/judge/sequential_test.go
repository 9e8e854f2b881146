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

func TestMixtureRho2(t *testing.T) {
	// Python: mixture_rho2(0.05 / 3, 500)
	rho2, err := MixtureRho2(0.05/3, 500)
	require.NoError(t, err)
	assert.InDelta(t, (2*math.Log(60)+math.Log(1+2*math.Log(60)))/500, rho2, 1e-18)
	for _, bad := range []float64{0, 1, -0.1, math.NaN()} {
		_, err := MixtureRho2(bad, 500)
		require.Error(t, err, "%v", bad)
	}
}

func TestTheStatisticCrossesItsThresholdExactlyWhenTheBoundCrossesTheLimit(t *testing.T) {
	const alpha, variance, tau2 = 0.01, 0.0004, 0.002
	r := ConfidenceRadius(variance, tau2, alpha)
	// At distance r from the limit, ln Lambda equals ln(1/alpha).
	assert.InDelta(t, -math.Log(alpha), LogMixtureRatio(r, variance, tau2), 1e-12)
	assert.True(t, math.IsInf(ConfidenceRadius(0, tau2, alpha), 1))

	for _, harmful := range []policy.Direction{policy.Decrease, policy.Increase} {
		sign := 1.0
		if harmful == policy.Decrease {
			sign = -1
		}
		inside, ok := MixtureTest(sign*(r*0.99), variance, tau2/0.5, 0, harmful, alpha, 0.5)
		require.True(t, ok)
		assert.False(t, inside.Breach)
		assert.Less(t, inside.Statistic, inside.Threshold)
		outside, ok := MixtureTest(sign*(r*1.01), variance, tau2/0.5, 0, harmful, alpha, 0.5)
		require.True(t, ok)
		assert.True(t, outside.Breach)
		assert.Greater(t, outside.Statistic, outside.Threshold)
	}
	_, ok := MixtureTest(1, 0, 1, 0, policy.Increase, alpha, 0.5)
	assert.False(t, ok, "no variance, no test")
}

func TestComparisonsNeedData(t *testing.T) {
	_, ok := CompareToStable(stats.New(stats.Proportion), proportion(10, 9), policy.Decrease, 0, 0.05, 0.01)
	assert.False(t, ok)
	_, ok = CompareToThreshold(mean(0.5), policy.Decrease, 0.3, 0.05, 0.01)
	assert.False(t, ok, "a mean needs two samples")
	test, ok := CompareToThreshold(proportion(10, 10), policy.Decrease, 0.5, 0.05, 0.01)
	require.True(t, ok, "a proportion that always agrees still has a regularised variance")
	assert.Positive(t, test.Variance)
}
