// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"errors"
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
)

// Rollout is what the processor hands to an Evaluator about one rollout at one evaluation.
type Rollout struct {
	// Snapshot is the tracker's copy of the rollout's statistics; with a ramp state, its
	// StepEvidence holds the windows since the step started.
	Snapshot Snapshot
	// Target is the rollout's policy and, when the control plane gave it, its ramp state.
	Target policy.Target
	// Now is the evaluation time, from which the step's elapsed time is computed.
	Now time.Time
}

// Evaluator reaches the verdict on one rollout. EvaluateRollout is called from one background
// goroutine, never on the span path, with a cumulative snapshot each time: it must be safe
// under continuous monitoring (checking at every tick must not inflate false verdicts). A
// panic or error is logged and the rollout skipped for that tick; it never reaches the
// pipeline. A verdict whose decision is breach becomes one alert.
type Evaluator interface {
	EvaluateRollout(r Rollout) (Verdict, error)
}

// Func adapts a function to Evaluator.
type Func func(Rollout) (Verdict, error)

// EvaluateRollout calls f.
func (f Func) EvaluateRollout(r Rollout) (Verdict, error) { return f(r) }

// Sequential is the processor's evaluator: the anytime-valid judge of each rollout's policy.
type Sequential struct{}

// EvaluateRollout judges r with its policy. The step's elapsed time is measured from the ramp
// state's step start to r.Now (0 when the start lies ahead, as a skewed clock can make it).
func (Sequential) EvaluateRollout(r Rollout) (Verdict, error) {
	if r.Target.Policy == nil {
		return Verdict{}, errors.New("the rollout has no policy")
	}
	j, err := New(r.Target.Policy)
	if err != nil {
		return Verdict{}, err
	}
	var step *Step
	if ramp := r.Target.Ramp; ramp != nil {
		elapsed := r.Now.Sub(ramp.StepStartedAt).Seconds()
		step = &Step{Index: ramp.Step, ElapsedSeconds: max(0, elapsed), Evidence: r.Snapshot.StepEvidence}
	}
	return j.Evaluate(r.Snapshot.Evidence, step)
}
