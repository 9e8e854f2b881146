// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"fmt"
	"math"
	"strings"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// statsOf returns a cohort's statistics of attribute, empty when it has none.
func statsOf(e *Evidence, c cohort, attribute string, kind stats.Kind) (*stats.Stat, error) {
	s, ok := e.cohort(c)[attribute]
	if !ok || s == nil {
		return stats.New(kind), nil
	}
	if s.Kind != kind {
		return nil, fmt.Errorf("%s statistics of %q are of kind %q, but the policy's signal is a %s", c, attribute, s.Kind, kind)
	}
	return s, nil
}

// judgeRule tests one rule on the rollout's evidence; mature says whether the step has reached
// its minimum duration and samples.
func (j *Judge) judgeRule(rule *policy.Rule, evidence *Evidence, mature bool) (RuleVerdict, error) {
	p := j.policy
	signal, err := p.Signal(rule.Signal)
	if err != nil {
		return RuleVerdict{}, err
	}
	attribute := signal.Attribute()
	relative := rule.Type == policy.Relative
	canaryStats, err := statsOf(evidence, canary, attribute, signal.Kind)
	if err != nil {
		return RuleVerdict{}, err
	}
	var stableStats *stats.Stat
	var limit float64
	if relative {
		if stableStats, err = statsOf(evidence, stable, attribute, signal.Kind); err != nil {
			return RuleVerdict{}, err
		}
		limit = rule.Tolerance()
		if signal.Harmful == policy.Decrease {
			limit = -rule.Tolerance()
		}
		if rule.Ratio != nil {
			limit = 0 // the contrast is the canary's rate minus ratio times stable's
		}
	} else {
		limit = *rule.Threshold
	}
	critical := p.IsCritical(rule)

	warmup := p.Statistics.WarmupSamples
	var short []string
	for _, c := range []struct {
		name cohort
		s    *stats.Stat
	}{{canary, canaryStats}, {stable, stableStats}} {
		if c.s != nil && c.s.N < warmup {
			short = append(short, fmt.Sprintf("%s has %d of the %d samples needed", c.name, c.s.N, warmup))
		}
	}
	var test Test
	tested := false
	if len(short) == 0 {
		target := p.Statistics.TargetSamples
		switch {
		case relative && rule.Ratio != nil:
			if test, tested, err = CompareRates(canaryStats, stableStats, signal.Harmful, *rule.Ratio, j.alpha, target); err != nil {
				return RuleVerdict{}, err
			}
		case relative:
			test, tested = CompareToStable(canaryStats, stableStats, signal.Harmful, rule.Tolerance(), j.alpha, target)
		default:
			test, tested = CompareToThreshold(canaryStats, signal.Harmful, limit, j.alpha, target)
		}
		if !tested {
			short = []string{"no spread has been observed yet"}
		}
	}

	rv := RuleVerdict{
		RuleID:             rule.ID,
		Signal:             signal.Name,
		Attribute:          attribute,
		Kind:               signal.Kind,
		Type:               rule.Type,
		Harmful:            signal.Harmful,
		Critical:           critical,
		Action:             rule.Action,
		Canary:             cohortEvidence(canaryStats),
		Limit:              limit,
		Margin:             rule.Margin,
		Ratio:              rule.Ratio,
		Threshold:          rule.Threshold,
		StatisticThreshold: -math.Log(j.alpha),
		Alpha:              j.alpha,
	}
	if stableStats != nil {
		e := cohortEvidence(stableStats)
		rv.Stable = &e
	}
	switch {
	case !tested:
		rv.Status = StatusInsufficientData
		rv.Summary = "waiting for data: " + strings.Join(short, "; ")
		return rv, nil
	case !test.Breach:
		rv.Status = StatusContinue
		rv.Summary = "not proven: " + describe(rule, signal, &test)
	case critical || mature:
		rv.Status = StatusBreach
		rv.Summary = "proven: " + describe(rule, signal, &test)
	default:
		rv.Status = StatusHeld
		rv.Summary = "proven, acting once the step reaches its minimum duration and samples: " + describe(rule, signal, &test)
	}
	rv.Estimate, rv.Variance, rv.Radius = ptr(test.Estimate), ptr(test.Variance), ptr(test.Radius)
	rv.Bound, rv.Statistic = ptr(test.Bound), ptr(test.Statistic)
	return rv, nil
}

func ptr(f float64) *float64 { return &f }

func cohortEvidence(s *stats.Stat) CohortEvidence {
	e := CohortEvidence{N: s.N}
	if est, ok := s.Estimate(); ok {
		e.Estimate = ptr(est)
	}
	if m, ok := s.Moments(); ok {
		e.Variance = ptr(m.Variance)
	}
	return e
}

// describe is one sentence for people, worded as the Python engine words it.
func describe(rule *policy.Rule, signal *policy.Signal, test *Test) string {
	side, which := "below", "upper"
	if signal.Harmful == policy.Increase {
		side, which = "above", "lower"
	}
	if rule.Ratio != nil {
		// Harmful when it decreases: a check, whose bad outcomes are its failures.
		counted := signal.Name + " per call is"
		if signal.Harmful == policy.Decrease {
			counted = signal.Name + " failures per call are"
		}
		return fmt.Sprintf("canary %s above %s times stable's (excess %s, lower bound %s, limit 0)",
			counted, pyG(*rule.Ratio), pyGPrec(test.Estimate, 4, true), pyGPrec(test.Bound, 4, true))
	}
	var claim, value string
	if rule.Type == policy.Relative {
		claim = fmt.Sprintf("canary %s is %s stable by more than %s", signal.Name, side, pyG(rule.Tolerance()))
		value = "difference " + pyGPrec(test.Estimate, 4, true)
	} else {
		claim = fmt.Sprintf("canary %s is %s %s", signal.Name, side, pyG(test.Limit))
		value = "estimate " + pyGPrec(test.Estimate, 4, false)
	}
	return fmt.Sprintf("%s (%s, %s bound %s, limit %s)", claim, value, which, pyGPrec(test.Bound, 4, false), pyG(test.Limit))
}
