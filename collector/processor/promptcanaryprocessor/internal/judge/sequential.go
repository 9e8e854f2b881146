// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"fmt"
	"math"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// The anytime-valid test: a mixture SPRT whose mixture is a normal distribution of harmful shifts
// centred on the regression the test proves fastest near target_samples samples per cohort
// (Robbins 1970; Howard, Ramdas, McAuliffe and Sekhon 2021, in its asymptotic form: Waudby-Smith,
// Arbour, Sinha, Kennedy and Ramdas 2021). Every quantity is the closed form of the Python engine
// (otel_prompt_canary.analysis.sequential, whose docstring derives them), written with the same
// operations in the same order, so both engines compute the same floats. With L = ln(1/a), a the
// rule's alpha, V the variance of the contrast and T its variance at target_samples per cohort:
//
//	m^2       = 2 L T,  t2 = (m/4)^2
//	K         = m^2 V + V (V + t2) (2 L + ln((V + t2) / V))
//	radius    = (sqrt(V^2 + K/16) - V) * 16 / m
//	statistic = (t2 d^2 + 2 m d V - m^2 V) / (2 V (V + t2)) - ln((V + t2) / V) / 2
//
// where d is the estimate's distance past the limit on the harmful side.

// MixtureSpread is the mixture's standard deviation as a share of its centre.
const MixtureSpread = 0.25

// Test is the outcome of one sequential test of a contrast against a rule's limit.
type Test struct {
	Estimate float64
	Variance float64
	// TargetVariance is the contrast's variance at target_samples samples per cohort.
	TargetVariance float64
	// Centre is the harmful shift the mixture is centred on.
	Centre    float64
	Limit     float64
	Radius    float64
	Bound     float64
	Statistic float64
	Threshold float64
	Breach    bool
}

func checkAlpha(alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return fmt.Errorf("alpha must be in (0, 1), got %v", alpha)
	}
	return nil
}

func perTarget(variance float64, targetSamples int64) float64 {
	return variance / float64(targetSamples)
}

// MixtureCentre is the harmful shift the mixture is centred on: sqrt(2 ln(1/alpha) T).
func MixtureCentre(alpha, targetVariance float64) float64 {
	return math.Sqrt(2.0 * -math.Log(alpha) * targetVariance)
}

// ConfidenceRadius is the distance from the estimate to the confidence sequence's end on the
// harmful side, +Inf when variance or targetVariance is not positive.
func ConfidenceRadius(variance, targetVariance, alpha float64) float64 {
	logInv := -math.Log(alpha)
	if !(variance > 0 && targetVariance > 0) {
		return math.Inf(1)
	}
	m2 := 2.0 * logInv * targetVariance
	t2 := MixtureSpread * MixtureSpread * m2
	k := m2*variance + variance*(variance+t2)*(2.0*logInv+math.Log((variance+t2)/variance))
	spread2 := MixtureSpread * MixtureSpread
	return (math.Sqrt(variance*variance+spread2*k) - variance) / (spread2 * math.Sqrt(m2))
}

// LogMixtureRatio is ln Lambda for a tested value distance past the estimate on the harmful side.
func LogMixtureRatio(distance, variance, targetVariance, alpha float64) float64 {
	m2 := 2.0 * -math.Log(alpha) * targetVariance
	t2 := MixtureSpread * MixtureSpread * m2
	numerator := t2*distance*distance + 2.0*math.Sqrt(m2)*distance*variance - m2*variance
	return numerator/(2.0*variance*(variance+t2)) - 0.5*math.Log((variance+t2)/variance)
}

// MixtureTest tests whether the contrast estimate (of variance variance) is proven past limit
// on the harmful side; targetVariance centres the mixture. It returns false when no spread has
// been observed yet (variance or targetVariance is not positive): nothing can be proven then.
func MixtureTest(estimate, variance, targetVariance, limit float64, harmful policy.Direction, alpha float64) (Test, bool) {
	if !(variance > 0 && targetVariance > 0) {
		return Test{}, false
	}
	radius := ConfidenceRadius(variance, targetVariance, alpha)
	var bound, distance float64
	var breach bool
	if harmful == policy.Decrease {
		bound = estimate + radius
		breach = bound < limit
		distance = math.Max(0.0, limit-estimate)
	} else {
		bound = estimate - radius
		breach = bound > limit
		distance = math.Max(0.0, estimate-limit)
	}
	return Test{
		Estimate:       estimate,
		Variance:       variance,
		TargetVariance: targetVariance,
		Centre:         MixtureCentre(alpha, targetVariance),
		Limit:          limit,
		Radius:         radius,
		Bound:          bound,
		Statistic:      LogMixtureRatio(distance, variance, targetVariance, alpha),
		Threshold:      -math.Log(alpha),
		Breach:         breach,
	}, true
}

// both returns the moments of canary, stable and both together, false when one has too few
// samples.
func both(canary, stable *stats.Stat) (c, s, pooled stats.Moments, ok bool) {
	c, okC := canary.Moments()
	s, okS := stable.Moments()
	pooled, okP := stats.Sum(canary, stable).Moments()
	return c, s, pooled, okC && okS && okP
}

// CompareToStable tests whether the canary is proven worse than stable by more than margin:
// D = p_canary - p_stable, with u = max(v_canary, v_pooled), V = u/n_canary + v_stable/n_stable
// and T = (u + v_stable)/target_samples. It returns false without enough data.
func CompareToStable(canary, stable *stats.Stat, harmful policy.Direction, margin, alpha float64, targetSamples int64) (Test, bool) {
	c, s, pooled, ok := both(canary, stable)
	if !ok {
		return Test{}, false
	}
	limit := margin
	if harmful == policy.Decrease {
		limit = -margin
	}
	floored := math.Max(c.Variance, pooled.Variance)
	return MixtureTest(
		c.Estimate-s.Estimate,
		floored/float64(c.N)+s.Variance/float64(s.N),
		perTarget(floored+s.Variance, targetSamples),
		limit, harmful, alpha,
	)
}

// badRate is the rate of bad outcomes a ratio rule compares: a check's failures (its passes when
// it is harmful increasing), or a score's events per call.
func badRate(kind stats.Kind, m stats.Moments, harmful policy.Direction) (float64, error) {
	if kind == stats.Proportion {
		if harmful == policy.Decrease {
			return 1.0 - m.Estimate, nil
		}
		return m.Estimate, nil
	}
	if harmful == policy.Decrease {
		return 0, fmt.Errorf("a ratio rule compares rates of bad outcomes: a score it judges must count events per call and be harmful when it increases")
	}
	return m.Estimate, nil
}

// CompareRates tests whether the canary's rate of bad outcomes is proven above ratio times
// stable's (count data): D = b_canary - ratio*b_stable, with u = max(v_canary, ratio*v_pooled),
// V = u/n_canary + ratio^2 v_stable/n_stable and T = (u + ratio^2 v_stable)/target_samples,
// tested against 0 with harm on increase. harmful is the signal's. It returns false without
// enough data.
func CompareRates(canary, stable *stats.Stat, harmful policy.Direction, ratio, alpha float64, targetSamples int64) (Test, bool, error) {
	if !(ratio > 0) || math.IsInf(ratio, 0) {
		return Test{}, false, fmt.Errorf("ratio must be a positive number, got %v", ratio)
	}
	c, s, pooled, ok := both(canary, stable)
	if !ok {
		return Test{}, false, nil
	}
	bc, err := badRate(canary.Kind, c, harmful)
	if err != nil {
		return Test{}, false, err
	}
	bs, err := badRate(stable.Kind, s, harmful)
	if err != nil {
		return Test{}, false, err
	}
	floored := math.Max(c.Variance, ratio*pooled.Variance)
	stablePart := ratio * ratio * s.Variance
	test, tested := MixtureTest(
		bc-ratio*bs,
		floored/float64(c.N)+stablePart/float64(s.N),
		perTarget(floored+stablePart, targetSamples),
		0.0, policy.Increase, alpha,
	)
	return test, tested, nil
}

// CompareToThreshold tests whether the canary is proven on the harmful side of threshold:
// D = p_canary, V = v_canary/n_canary and T = v_canary/target_samples. It returns false without
// enough data.
func CompareToThreshold(canary *stats.Stat, harmful policy.Direction, threshold, alpha float64, targetSamples int64) (Test, bool) {
	c, ok := canary.Moments()
	if !ok {
		return Test{}, false
	}
	return MixtureTest(c.Estimate, c.Variance/float64(c.N), perTarget(c.Variance, targetSamples), threshold, harmful, alpha)
}
