// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Action is what a verdict asks the control plane to do (policy.Action).
type Action = policy.Action

// The three actions, most severe first.
const (
	Rollback = policy.Rollback
	Pause    = policy.Pause
	Alert    = policy.Alert
)

// Decision is the overall answer: breach when a rule is proven and its action applies.
type Decision string

const (
	// DecisionContinue means no rule is proven (yet).
	DecisionContinue Decision = "continue"
	// DecisionBreach means at least one rule is proven and acts now.
	DecisionBreach Decision = "breach"
)

// Status is where one rule stands.
type Status string

const (
	// StatusInsufficientData: a compared cohort has fewer than warmup_samples samples, or no
	// spread has been observed yet.
	StatusInsufficientData Status = "insufficient_data"
	// StatusContinue: evaluated, not proven.
	StatusContinue Status = "continue"
	// StatusHeld: proven, but the rule is not critical and the step has not reached its
	// minimum duration and samples yet (it acts once it has).
	StatusHeld Status = "held"
	// StatusBreach: proven, and its action applies now.
	StatusBreach Status = "breach"
)

// CohortEvidence is one cohort's data for a rule.
type CohortEvidence struct {
	N int64 `json:"n"`
	// Estimate is the proportion or mean; nil without samples.
	Estimate *float64 `json:"estimate"`
	// Variance is the per-sample variance estimate (regularised for a proportion); nil when it
	// cannot be computed.
	Variance *float64 `json:"variance"`
}

// RuleVerdict is one rule's verdict and its evidence.
type RuleVerdict struct {
	RuleID    string           `json:"rule_id"`
	Signal    string           `json:"signal"`
	Attribute string           `json:"attribute"`
	Kind      stats.Kind       `json:"kind"`
	Type      policy.RuleType  `json:"type"`
	Harmful   policy.Direction `json:"harmful"`
	// Critical is true when the rule or its signal is critical.
	Critical bool            `json:"critical"`
	Action   Action          `json:"action"`
	Status   Status          `json:"status"`
	Canary   CohortEvidence  `json:"canary"`
	Stable   *CohortEvidence `json:"stable"`
	// Estimate is the contrast: canary minus stable (relative), the canary's rate of bad
	// outcomes minus ratio times stable's (ratio), or the canary's value (absolute).
	Estimate *float64 `json:"estimate"`
	// Limit is -margin or +margin (relative), 0 (ratio) or the threshold (absolute).
	Limit float64 `json:"limit"`
	// Margin is the relative rule's tolerated gap, Ratio the tolerated rate ratio of a relative
	// rule on count data, Threshold the absolute rule's limit.
	Margin    *float64 `json:"margin,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	// Variance is the variance of the contrast's estimate.
	Variance *float64 `json:"variance"`
	// Radius is the distance from the estimate to the confidence sequence's end on the harmful
	// side.
	Radius *float64 `json:"radius"`
	// Bound is the upper (harmful decrease) or lower (harmful increase, and every ratio rule)
	// confidence bound.
	Bound *float64 `json:"bound"`
	// Statistic is the log mixture likelihood ratio at the limit.
	Statistic *float64 `json:"statistic"`
	// StatisticThreshold is ln(1/alpha): the statistic breaches above it.
	StatisticThreshold float64 `json:"statistic_threshold"`
	// Alpha is this rule's share of the policy's alpha.
	Alpha   float64 `json:"alpha"`
	Summary string  `json:"summary"`
}

// Verdict is the judge's answer for one rollout at one moment.
type Verdict struct {
	Decision Decision `json:"decision"`
	// Action is the breached rules' most severe action ("" without a breach).
	Action Action `json:"action,omitempty"`
	// RuleID is the rule that decided the action: the first, in policy order, with it.
	RuleID string `json:"rule_id,omitempty"`
	// Breached and Held list rule ids in policy order.
	Breached []string `json:"breached"`
	Held     []string `json:"held"`
	// Ready says the current step may advance (or the canary be promoted at the last step).
	Ready      bool     `json:"ready"`
	WaitingFor []string `json:"waiting_for"`
	// Step is the index of the current step, -1 when the ramp state is unknown.
	Step           int     `json:"step"`
	CanaryPercent  float64 `json:"canary_percent"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// StableSamples and CanarySamples are the cohorts' samples in the current step.
	StableSamples int64         `json:"stable_samples"`
	CanarySamples int64         `json:"canary_samples"`
	Rules         []RuleVerdict `json:"rules"`
}

// Deciding returns the verdict of the rule that decided the action, nil without a breach.
func (v *Verdict) Deciding() *RuleVerdict {
	if v.Decision != DecisionBreach {
		return nil
	}
	for i := range v.Rules {
		if v.Rules[i].RuleID == v.RuleID {
			return &v.Rules[i]
		}
	}
	return nil
}
