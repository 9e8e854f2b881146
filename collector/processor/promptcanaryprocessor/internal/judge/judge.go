// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package judge defines what the promptcanary processor hands to a statistical judge and what
// it expects back. The processor accumulates exact sufficient statistics per rollout, cohort
// and signal (package stats, identical to the Python engine's); on every evaluation tick it
// calls Judge.Evaluate with the rollout's cumulative Snapshot and its Policy, and turns each
// Verdict into one signed alert.
//
// The statistics engine itself is not part of this package yet: None reaches no verdict, so
// the processor only reports aggregates until a judge that implements the project's policy
// (otel_prompt_canary.analysis: anytime-valid mixture tests, absolute and relative rules) is
// plugged in through New and checked against the shared vectors of tests/vectors. A full port
// also needs the rollout's ramp step and the time it started (readiness and non-critical
// breaches depend on the step's own samples and duration), which spans do not carry: they
// would come from the control plane's routing state, and the step's samples from windows the
// tracker would then keep since the step start.
package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"encoding/json"
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Cohort is what one side of a rollout (stable or canary) has accumulated.
type Cohort struct {
	// Version is the last gen_ai.prompt.version seen in this cohort ("" if none).
	Version string
	// Signals maps a signal attribute (prompt_canary.check.<name>, prompt_canary.score.<name>,
	// gen_ai.usage.input_tokens, gen_ai.usage.output_tokens) to its exact statistics.
	Signals map[string]*stats.Stat
}

// Snapshot is a copy of one rollout's cumulative statistics since the processor started
// tracking it. The judge owns it once passed.
type Snapshot struct {
	Prompt    string
	RolloutID string
	Stable    Cohort
	Canary    Cohort
	// FirstSample and LastSample bound the samples' times.
	FirstSample time.Time
	LastSample  time.Time
}

// Policy is one prompt's rollout policy, as served by the control plane or read from a file.
// The processor only reads Prompt; Document is the whole policy document as JSON, for the
// judge to interpret (signals, directions of harm, rules and their actions).
type Policy struct {
	Prompt   string
	Document json.RawMessage
}

// Action is what a verdict asks the control plane to do.
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
func (a Action) Valid() bool {
	return a == Rollback || a == Pause || a == Alert
}

// Verdict is one rule of the policy that the evidence says is violated.
type Verdict struct {
	// Rule is the name of the policy rule; with the rollout and Action it identifies the
	// alert, so the same verdict reached again is delivered once.
	Rule string
	// Action is the rule's action.
	Action Action
	// Reason is one human-readable sentence for the audit log.
	Reason string
	// Evidence carries the counts, estimates, statistic and bound behind the verdict. It is
	// marshalled to JSON as the alert's "evidence" object, so its values must be
	// JSON-encodable (no NaN or infinities).
	Evidence map[string]any
}

// Judge decides which policy rules a rollout violates. Evaluate is called from one background
// goroutine, never on the span path, with a cumulative snapshot each time: an implementation
// must be safe under continuous monitoring (checking after every tick must not inflate false
// verdicts) and should be pure, fast and deterministic. A panic or error is logged and the
// rollout skipped for that tick; it never reaches the pipeline.
type Judge interface {
	Evaluate(policy Policy, snapshot Snapshot) ([]Verdict, error)
}

// Func adapts a function to Judge.
type Func func(Policy, Snapshot) ([]Verdict, error)

// Evaluate calls f.
func (f Func) Evaluate(p Policy, s Snapshot) ([]Verdict, error) { return f(p, s) }

// None is the judge in force until the statistics engine is ported: it reaches no verdict.
type None struct{}

// Evaluate returns no verdict.
func (None) Evaluate(Policy, Snapshot) ([]Verdict, error) { return nil, nil }

// New returns the processor's judge.
func New() Judge { return None{} }
