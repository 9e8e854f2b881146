// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"

import (
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Want chooses the rollouts to snapshot: ok false skips a rollout; a non-zero stepStart asks
// for the statistics of its current ramp step as well (the windows that start at or after it).
type Want func(prompt, rolloutID string) (stepStart time.Time, ok bool)

// Snapshots copies the statistics of the tracked rollouts that want accepts (every rollout,
// without step statistics, when want is nil). want is called with the tracker's lock held: it
// must be quick and must not call the tracker.
func (t *Tracker) Snapshots(want Want) []judge.Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []judge.Snapshot
	for _, r := range t.rollouts {
		var stepStart time.Time
		if want != nil {
			var ok bool
			if stepStart, ok = want(r.prompt, r.id); !ok {
				continue
			}
		}
		out = append(out, r.snapshot(stepStart))
	}
	return out
}

// Snapshot copies one rollout's statistics, and those of its current ramp step when stepStart
// is not zero.
func (t *Tracker) Snapshot(prompt, rolloutID string, stepStart time.Time) (judge.Snapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.rollouts[key{prompt: prompt, rollout: rolloutID}]
	if !ok {
		return judge.Snapshot{}, false
	}
	return r.snapshot(stepStart), true
}

func (r *rollout) snapshot(stepStart time.Time) judge.Snapshot {
	s := judge.Snapshot{
		Prompt:        r.prompt,
		RolloutID:     r.id,
		StableVersion: r.cohorts[Stable].version,
		CanaryVersion: r.cohorts[Canary].version,
		Evidence:      judge.Evidence{Stable: r.cohorts[Stable].totals(), Canary: r.cohorts[Canary].totals()},
		FirstSample:   r.firstSample,
		LastSample:    r.lastSample,
	}
	if !stepStart.IsZero() {
		// A window counts, whole, when its start is at or after the step's start.
		minStart := stepStart.Unix()
		if stepStart.Nanosecond() > 0 {
			minStart++
		}
		stable, exactStable := r.cohorts[Stable].since(minStart)
		canary, exactCanary := r.cohorts[Canary].since(minStart)
		s.StepEvidence = &judge.Evidence{Stable: stable, Canary: canary}
		s.StepEvidencePartial = !exactStable || !exactCanary
	}
	return s
}

func (c *cohortState) totals() map[string]*stats.Stat {
	out := make(map[string]*stats.Stat, len(c.signals))
	for attr, sig := range c.signals {
		out[attr] = sig.total.Clone()
	}
	return out
}

func (c *cohortState) since(minStart int64) (map[string]*stats.Stat, bool) {
	out := make(map[string]*stats.Stat, len(c.signals))
	exact := true
	for attr, sig := range c.signals {
		total, ok := sig.since(minStart)
		exact = exact && ok
		if total != nil {
			out[attr] = total
		}
	}
	return out, exact
}
