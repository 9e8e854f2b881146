// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"fmt"
	"math"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// The anytime-valid test: a normal-mixture confidence sequence for the canary, or for its gap to
// stable (Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas 2021, arXiv:2103.06476; for a
// difference of means, the mixture SPRT of Johari, Koomen, Pekelis and Walsh 2017). Every
// quantity is the closed form of the Python engine (otel_prompt_canary.analysis.sequential),
// written with the same operations in the same order, so both engines compute the same floats:
//
//	rho2      = (2 ln(1/a) + ln(1 + 2 ln(1/a))) / target_samples
//	tau2      = rho2 * scale
//	radius    = sqrt((V (V + tau2) / tau2) * (ln((V + tau2) / V) - 2 ln(a)))
//	statistic = tau2 d^2 / (2 V (V + tau2)) - ln((V + tau2) / V) / 2
//
// where a is the rule's alpha, V the variance of the contrast and d its distance past the limit
// on the harmful side.

// Test is the outcome of one sequential test of a contrast against a rule's limit.
type Test struct {
	Estimate  float64
	Variance  float64
	Tau2      float64
	Limit     float64
	Radius    float64
	Bound     float64
	Statistic float64
	Threshold float64
	Breach    bool
}

// MixtureRho2 is the mixture parameter that makes the bound tightest near targetSamples
// canary samples.
func MixtureRho2(alpha float64, targetSamples int64) (float64, error) {
	if !(alpha > 0 && alpha < 1) {
		return 0, fmt.Errorf("alpha must be in (0, 1), got %v", alpha)
	}
	if targetSamples < 1 {
		return 0, fmt.Errorf("target_samples must be at least 1, got %d", targetSamples)
	}
	logInv := -math.Log(alpha)
	return (2.0*logInv + math.Log(1.0+2.0*logInv)) / float64(targetSamples), nil
}

// ConfidenceRadius is the half-width of the (1 - alpha) normal-mixture confidence sequence,
// +Inf when variance or tau2 is not positive.
func ConfidenceRadius(variance, tau2, alpha float64) float64 {
	if !(variance > 0 && tau2 > 0) {
		return math.Inf(1)
	}
	ratio := (variance + tau2) / variance
	return math.Sqrt((variance * (variance + tau2) / tau2) * (math.Log(ratio) - 2.0*math.Log(alpha)))
}

// LogMixtureRatio is ln Lambda for an estimate distance away from the tested value.
func LogMixtureRatio(distance, variance, tau2 float64) float64 {
	ratio := (variance + tau2) / variance
	return tau2*distance*distance/(2.0*variance*(variance+tau2)) - 0.5*math.Log(ratio)
}

// MixtureTest tests whether the contrast estimate (of variance variance) is proven past limit
// on the harmful side. scale is the per-sample variance that sets the mixture
// (tau2 = rho2 * scale). It returns false when no spread has been observed yet (variance or
// tau2 is not positive): nothing can be proven then.
func MixtureTest(estimate, variance, scale, limit float64, harmful policy.Direction, alpha, rho2 float64) (Test, bool) {
	tau2 := rho2 * scale
	if !(variance > 0 && tau2 > 0) {
		return Test{}, false
	}
	radius := ConfidenceRadius(variance, tau2, alpha)
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
		Estimate:  estimate,
		Variance:  variance,
		Tau2:      tau2,
		Limit:     limit,
		Radius:    radius,
		Bound:     bound,
		Statistic: LogMixtureRatio(distance, variance, tau2),
		Threshold: -math.Log(alpha),
		Breach:    breach,
	}, true
}

// CompareToStable tests whether the canary is proven worse than stable by more than margin:
// D = p_canary - p_stable, V = max(v_canary, v_pooled)/n_canary + v_stable/n_stable and
// tau2 = rho2 * v_pooled, where v_pooled is the variance of both cohorts' samples together.
// It returns false without enough data.
func CompareToStable(canary, stable *stats.Stat, harmful policy.Direction, margin, alpha, rho2 float64) (Test, bool) {
	c, okC := canary.Moments()
	s, okS := stable.Moments()
	pooled, okP := stats.Sum(canary, stable).Moments()
	if !okC || !okS || !okP {
		return Test{}, false
	}
	limit := margin
	if harmful == policy.Decrease {
		limit = -margin
	}
	return MixtureTest(
		c.Estimate-s.Estimate,
		math.Max(c.Variance, pooled.Variance)/float64(c.N)+s.Variance/float64(s.N),
		pooled.Variance,
		limit, harmful, alpha, rho2,
	)
}

// CompareToThreshold tests whether the canary is proven on the harmful side of threshold:
// D = p_canary, V = v_canary/n_canary and tau2 = rho2 * v_canary. It returns false without
// enough data.
func CompareToThreshold(canary *stats.Stat, harmful policy.Direction, threshold, alpha, rho2 float64) (Test, bool) {
	c, ok := canary.Moments()
	if !ok {
		return Test{}, false
	}
	return MixtureTest(c.Estimate, c.Variance/float64(c.N), c.Variance, threshold, harmful, alpha, rho2)
}
