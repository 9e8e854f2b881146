// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"

import (
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Evidence holds statistics per cohort and signal attribute (prompt_canary.check.<name>,
// prompt_canary.score.<name>...): the Python engine's Snapshot.
type Evidence struct {
	Stable map[string]*stats.Stat
	Canary map[string]*stats.Stat
}

func (e *Evidence) cohort(c cohort) map[string]*stats.Stat {
	if c == stable {
		return e.Stable
	}
	return e.Canary
}

type cohort string

const (
	stable cohort = "stable"
	canary cohort = "canary"
)

// Snapshot is a copy of one rollout's statistics, taken by the processor's tracker. The judge
// owns it once passed.
type Snapshot struct {
	Prompt    string
	RolloutID string
	// StableVersion and CanaryVersion are the last gen_ai.prompt.version seen in each cohort.
	StableVersion string
	CanaryVersion string
	// Evidence holds the totals since the processor started tracking the rollout.
	Evidence Evidence
	// StepEvidence holds the totals of the windows that start at or after the current ramp
	// step's start; nil when no step start was asked for.
	StepEvidence *Evidence
	// StepEvidencePartial is true when some samples of the current step had already left the
	// tracker's step history: StepEvidence then undercounts the step.
	StepEvidencePartial bool
	// FirstSample and LastSample bound the samples' times.
	FirstSample time.Time
	LastSample  time.Time
}
