// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"fmt"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Span attribute prefixes of the two sources a signal reads.
const (
	CheckPrefix = "prompt_canary.check."
	ScorePrefix = "prompt_canary.score."
)

// Direction is the way a signal moves when the canary is worse.
type Direction string

const (
	// Decrease means a drop is a regression (every check, a judge score).
	Decrease Direction = "decrease"
	// Increase means a rise is a regression (output tokens, latency).
	Increase Direction = "increase"
)

// RuleType says what a rule compares the canary with.
type RuleType string

const (
	// Absolute compares the canary with a fixed threshold.
	Absolute RuleType = "absolute"
	// Relative compares the canary with the concurrent stable cohort, with a margin.
	Relative RuleType = "relative"
)

// Action is what a breach asks the control plane to do.
type Action string

const (
	// Rollback asks the control plane to roll the canary back.
	Rollback Action = "rollback"
	// Pause asks the control plane to hold the ramp where it is.
	Pause Action = "pause"
	// Alert only notifies.
	Alert Action = "alert"
)

// Valid reports whether a is one of the three actions.
func (a Action) Valid() bool { return a.Severity() > 0 }

// Severity is 3 for rollback, 2 for pause, 1 for alert (0 otherwise): when several rules
// breach, the most severe action wins.
func (a Action) Severity() int {
	switch a {
	case Rollback:
		return 3
	case Pause:
		return 2
	case Alert:
		return 1
	default:
		return 0
	}
}

// Promotion says who takes a healthy rollout to everyone.
type Promotion string

const (
	// Automatic lets the control plane's rollout controller walk the whole ramp and promote.
	Automatic Promotion = "automatic"
	// Manual stops the controller before the 100% step: a person promotes.
	Manual Promotion = "manual"
)

// Policy is the canary policy of one prompt (schemas/policy.schema.json): its ramp, the signals
// it watches and the rules that judge them. Parse it with ParsePolicy, which fills in the
// defaults and refuses what the Python engine refuses; the judge relies on that validation.
type Policy struct {
	// Alpha is the chance of any false breach over a whole rollout, shared by the rules.
	Alpha      float64
	Ramp       Ramp
	Signals    []Signal
	Rules      []Rule
	Statistics Statistics
	// Promotion is read so that both engines accept the same documents; the processor never
	// promotes, it only reports and alerts.
	Promotion Promotion
}

// Ramp holds the steps of a rollout and how long each one lasts at least.
type Ramp struct {
	// Steps are the canary's share of traffic at each step, in percent, ending at 100.
	Steps []float64
	// MinDurationSeconds is the minimum duration of every step that sets none of its own.
	MinDurationSeconds float64
	// MinSamples is the minimum number of samples per cohort during every step that sets none
	// of its own.
	MinSamples int64
	// StepMinimums are the minimums steps set for themselves ({percent, min_duration,
	// min_samples} in the document), by step index. It may be shorter than Steps (nil when no
	// step sets any); a missing entry or a zero field means the ramp's value applies.
	StepMinimums []StepMinimums
}

// StepMinimums are the minimums one ramp step sets for itself; zero means "the ramp's".
type StepMinimums struct {
	// MinDurationSeconds is the step's own minimum duration (> 0 when set).
	MinDurationSeconds float64
	// MinSamples is the step's own minimum samples per cohort (>= 1 when set).
	MinSamples int64
}

// MinDurationAt is the minimum duration of step (an index into Steps): its own, else the ramp's.
func (r *Ramp) MinDurationAt(step int) float64 {
	if step >= 0 && step < len(r.StepMinimums) && r.StepMinimums[step].MinDurationSeconds > 0 {
		return r.StepMinimums[step].MinDurationSeconds
	}
	return r.MinDurationSeconds
}

// MinSamplesAt is the minimum samples per cohort of step (an index into Steps): its own, else
// the ramp's.
func (r *Ramp) MinSamplesAt(step int) int64 {
	if step >= 0 && step < len(r.StepMinimums) && r.StepMinimums[step].MinSamples > 0 {
		return r.StepMinimums[step].MinSamples
	}
	return r.MinSamples
}

// Signal is one quality signal, read from a span attribute.
type Signal struct {
	// Name is the check or score name, such as json_valid or judge.
	Name string
	// Kind is stats.Proportion (a boolean check) or stats.Mean (a numeric score).
	Kind    stats.Kind
	Harmful Direction
	// Critical makes every rule on the signal act as soon as it is proven.
	Critical bool
	// MustHaveData keeps a step from being ready until the signal has its samples.
	MustHaveData bool
}

// Attribute is the span attribute the signal reads: prompt_canary.check.<name> for a
// proportion, prompt_canary.score.<name> for a mean.
func (s *Signal) Attribute() string {
	if s.Kind == stats.Proportion {
		return CheckPrefix + s.Name
	}
	return ScorePrefix + s.Name
}

// Rule says when a signal proves the canary worse, and what to do then.
type Rule struct {
	// ID is unique in the policy; it defaults to "<signal>.<type>".
	ID     string
	Signal string
	Type   RuleType
	// Threshold is the limit of an absolute rule (nil for a relative rule).
	Threshold *float64
	// Margin is how much worse than stable a relative rule tolerates (nil for an absolute rule,
	// or a relative rule that gives a Ratio).
	Margin *float64
	// Ratio is the rate ratio a relative rule on count data tolerates: it breaches when the
	// canary's rate of bad outcomes is proven above Ratio times stable's (nil otherwise).
	Ratio    *float64
	Action   Action
	Critical bool
}

// Tolerance is the margin of a relative rule (0 when unset), and 0 for an absolute rule.
func (r *Rule) Tolerance() float64 {
	if r.Margin == nil {
		return 0
	}
	return *r.Margin
}

// Statistics tunes the sequential test.
type Statistics struct {
	// TargetSamples is the number of canary samples at which the confidence bound is tightest.
	TargetSamples int64
	// WarmupSamples is how many samples each compared cohort needs before a rule may breach.
	WarmupSamples int64
}

// Signal returns the signal called name.
func (p *Policy) Signal(name string) (*Signal, error) {
	for i := range p.Signals {
		if p.Signals[i].Name == name {
			return &p.Signals[i], nil
		}
	}
	return nil, fmt.Errorf("the policy has no signal %q", name)
}

// IsCritical reports whether rule acts at any step: the rule or its signal is critical.
func (p *Policy) IsCritical(rule *Rule) bool {
	if rule.Critical {
		return true
	}
	s, err := p.Signal(rule.Signal)
	return err == nil && s.Critical
}

// RuleAlpha is each rule's share of Alpha (Bonferroni), so that all rules together stay
// within it.
func (p *Policy) RuleAlpha() float64 {
	return p.Alpha / float64(len(p.Rules))
}
