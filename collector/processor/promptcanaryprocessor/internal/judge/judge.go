// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package judge is the promptcanary processor's statistical judge, a port of the Python engine
// (otel_prompt_canary.analysis: policy, sequential, judge, verdict) that decides exactly as it
// does: the shared vectors of the repository's tests/vectors pin every decision.
//
// A Judge applies one policy. Each rule is an anytime-valid sequential test (sequential.go) on
// the evidence of the whole rollout, so checking after every tick does not inflate false
// breaches; the samples of the current ramp step decide readiness and whether a non-critical
// proven rule acts now (breach) or once the step is mature (held). The overall decision takes
// the most severe action among the breached rules, ties going to the rule listed first.
//
// The processor calls an Evaluator (evaluator.go) on every evaluation tick with each rollout's
// Snapshot (the tracker's copy of its statistics), its policy and its ramp state.
package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"errors"
	"fmt"
	"math"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
)

// Judge judges rollouts against one policy. It is stateless between calls and safe to share.
type Judge struct {
	policy *policy.Policy
	alpha  float64
}

// New returns the judge of p, a policy validated by policy.ParsePolicy or policy.FromValue.
func New(p *policy.Policy) (*Judge, error) {
	if p == nil || len(p.Rules) == 0 {
		return nil, errors.New("a judge needs a policy with at least one rule")
	}
	alpha := p.RuleAlpha()
	if err := checkAlpha(alpha); err != nil {
		return nil, err
	}
	if p.Statistics.TargetSamples < 1 {
		return nil, fmt.Errorf("target_samples must be at least 1, got %d", p.Statistics.TargetSamples)
	}
	return &Judge{policy: p, alpha: alpha}, nil
}

// Policy is the policy this judge applies.
func (j *Judge) Policy() *policy.Policy { return j.policy }

// RuleAlpha is each rule's share of the policy's alpha.
func (j *Judge) RuleAlpha() float64 { return j.alpha }

// Step says where the rollout stands on its ramp.
type Step struct {
	// Index is the current step, an index into the policy's ramp.steps.
	Index int
	// ElapsedSeconds is how long the current step has run.
	ElapsedSeconds float64
	// Evidence holds the statistics since the current step started; nil means the rollout's
	// whole evidence (a rollout judged step by step).
	Evidence *Evidence
}

// Evaluate returns the verdict on a rollout. evidence holds the statistics since the rollout
// started. step is where the rollout stands on its ramp; nil when it is unknown (a policy given
// without rollout state): then no step is mature, so only critical rules can breach, proven
// non-critical rules stay held, and the step is never ready.
func (j *Judge) Evaluate(evidence Evidence, step *Step) (Verdict, error) {
	p := j.policy
	steps := p.Ramp.Steps
	inStep := &evidence
	v := Verdict{Step: -1, Breached: []string{}, Held: []string{}, WaitingFor: []string{}}
	last := false
	var waiting []string
	if step != nil {
		if step.Index < 0 || step.Index >= len(steps) {
			return Verdict{}, fmt.Errorf("step %d is outside the policy's ramp of %d steps (0..%d)", step.Index, len(steps), len(steps)-1)
		}
		if math.IsNaN(step.ElapsedSeconds) || math.IsInf(step.ElapsedSeconds, 0) || step.ElapsedSeconds < 0 {
			return Verdict{}, fmt.Errorf("elapsed_seconds must be finite and >= 0, got %v", step.ElapsedSeconds)
		}
		if step.Evidence != nil {
			inStep = step.Evidence
		}
		last = steps[step.Index] == 100
		v.Step, v.CanaryPercent, v.ElapsedSeconds = step.Index, steps[step.Index], step.ElapsedSeconds
	}

	v.StableSamples = j.cohortSamples(inStep, stable)
	v.CanarySamples = j.cohortSamples(inStep, canary)
	// Each step's own minimums, else the ramp's; without a known step, the ramp's.
	minSamples := p.Ramp.MinSamples
	if step != nil {
		minSamples = p.Ramp.MinSamplesAt(step.Index)
		waiting = immaturity(v.StableSamples, v.CanarySamples, p.Ramp.MinDurationAt(step.Index), minSamples, step.ElapsedSeconds, last)
	} else {
		waiting = []string{"the rollout's ramp step is unknown: the policy came without rollout state"}
	}
	mature := len(waiting) == 0
	waiting = append(waiting, j.missingData(inStep, minSamples, last)...)

	v.Rules = make([]RuleVerdict, 0, len(p.Rules))
	for i := range p.Rules {
		rv, err := j.judgeRule(&p.Rules[i], &evidence, mature)
		if err != nil {
			return Verdict{}, err
		}
		v.Rules = append(v.Rules, rv)
	}
	for _, rv := range v.Rules {
		switch rv.Status {
		case StatusBreach:
			v.Breached = append(v.Breached, rv.RuleID)
		case StatusHeld:
			v.Held = append(v.Held, rv.RuleID)
		}
	}
	for _, id := range v.Breached {
		waiting = append(waiting, fmt.Sprintf("rule %s is in breach", pyQuote(id)))
	}
	for _, id := range v.Held {
		waiting = append(waiting, fmt.Sprintf("rule %s is proven and acts once the step reaches its minimums", pyQuote(id)))
	}

	v.Decision = DecisionContinue
	if len(v.Breached) > 0 {
		v.Decision = DecisionBreach
		// The first of equals wins: policy order.
		best := -1
		for _, rv := range v.Rules {
			if rv.Status == StatusBreach && rv.Action.Severity() > best {
				best, v.Action, v.RuleID = rv.Action.Severity(), rv.Action, rv.RuleID
			}
		}
	}
	v.Ready = len(waiting) == 0
	v.WaitingFor = append(v.WaitingFor, waiting...)
	return v, nil
}
