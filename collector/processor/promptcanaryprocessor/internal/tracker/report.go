// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"

import (
	"math"
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// Report holds one rollout's increments since its previous report, per cohort, signal
// attribute and window start (Unix seconds).
type Report struct {
	Prompt    string
	RolloutID string
	// Versions holds the last version seen in each cohort, indexed by Cohort.
	Versions [2]string
	// Windows holds the increments, indexed by Cohort.
	Windows [2]map[string]map[int64]*stats.Stat
	// Models holds the calls per response model and window start, indexed by Cohort (nil when
	// no span named a model).
	Models [2]map[string]map[int64]int64
}

// TakeReports hands over the unreported increments of at most limit rollouts that received
// samples since their last report (every such rollout when limit is negative), and forgets
// them. Rollouts beyond limit keep their increments for a later call.
func (t *Tracker) TakeReports(limit int) []Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Report
	for _, r := range t.rollouts {
		if limit >= 0 && len(out) >= limit {
			break
		}
		if r.dirty {
			out = append(out, r.takeReport())
		}
	}
	return out
}

// EvictIdle forgets rollouts that received no span for the idle timeout and returns their
// last unreported increments; a rollout seen again later starts afresh. At most limit reports
// are returned (no bound when limit is negative): an idle rollout with increments beyond that
// stays tracked until a later call has room for its report.
func (t *Tracker) EvictIdle(limit int) []Report {
	cutoff := t.now().Add(-t.limits.IdleTimeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Report
	for k, r := range t.rollouts {
		if !r.lastSeen.Before(cutoff) {
			continue
		}
		if r.dirty {
			if limit >= 0 && len(out) >= limit {
				continue
			}
			out = append(out, r.takeReport())
		}
		delete(t.rollouts, k)
	}
	return out
}

// Restore puts back the increments of a report that could not be delivered, so that a later
// report carries them. It merges them into the rollout's unreported increments, within the
// tracker's bounds: a rollout no longer tracked is tracked again (with those increments as its
// only evidence) when MaxRollouts allows. It returns Accepted when every increment was put
// back, or the bound that refused some of them (those are lost). The report must not be used
// afterwards: its statistics may become the tracker's.
func (t *Tracker) Restore(rep Report) Refusal {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{prompt: rep.Prompt, rollout: rep.RolloutID}
	r, tracked := t.rollouts[k]
	if !tracked {
		if !rep.hasIncrements() {
			return Accepted
		}
		if len(t.rollouts) >= t.limits.MaxRollouts {
			return RefusedRollouts
		}
		first, last := rep.windowRange()
		// lastSeen stays zero: the rollout was idle, so it is forgotten again, with its
		// report, at the next eviction unless a span arrives.
		r = &rollout{prompt: rep.Prompt, id: rep.RolloutID, firstSample: time.Unix(first, 0), lastSample: time.Unix(last, 0)}
		for i := range r.cohorts {
			r.cohorts[i] = cohortState{version: rep.Versions[i], signals: make(map[string]*signal)}
		}
		t.rollouts[k] = r
	}
	refusal := Accepted
	for i := range rep.Windows {
		c := &r.cohorts[i]
		for attr, windows := range rep.Windows[i] {
			ref, restored := t.restoreSignal(c, attr, windows, !tracked)
			if ref != Accepted && refusal == Accepted {
				refusal = ref
			}
			r.dirty = r.dirty || restored
		}
		for model, windows := range rep.Models[i] {
			for window, calls := range windows {
				if ref := t.addModel(c, model, window, calls); ref != Accepted {
					if refusal == Accepted {
						refusal = ref
					}
					continue
				}
				r.dirty = true
			}
		}
	}
	return refusal
}

// restoreSignal merges one signal's increments back; fresh says the rollout was tracked again
// by Restore, so its totals are rebuilt from the increments. It returns the bound that refused
// some increments, if any, and whether any was put back. Callers hold mu.
func (t *Tracker) restoreSignal(c *cohortState, attr string, windows map[int64]*stats.Stat, fresh bool) (refusal Refusal, restored bool) {
	for window, st := range windows {
		sig, ok := c.signals[attr]
		if !ok {
			if len(c.signals) >= t.limits.MaxSignalsPerCohort {
				return RefusedSignals, restored
			}
			sig = newSignal(st.Kind, t.limits.StepWindows)
			c.signals[attr] = sig
		}
		if sig.total.Kind != st.Kind {
			continue
		}
		if delta, ok := sig.pending[window]; ok {
			delta.Merge(st)
		} else if len(sig.pending) < t.limits.MaxPendingWindows {
			sig.pending[window] = st
		} else {
			refusal = RefusedWindows
			continue
		}
		if fresh {
			// The increments are the whole evidence of a rollout tracked again; they are not
			// in the recent windows, so a step that began before them counts as partial.
			sig.total.Merge(st)
			sig.firstWindow = min(sig.firstWindow, window)
			sig.lostWindow = max(sig.lostWindow, window)
		}
		restored = true
	}
	return refusal, restored
}

func (rep *Report) hasIncrements() bool {
	for i := range rep.Windows {
		if len(rep.Windows[i]) > 0 || len(rep.Models[i]) > 0 {
			return true
		}
	}
	return false
}

// windowRange returns the earliest and latest window starts of the report's increments.
func (rep *Report) windowRange() (first, last int64) {
	first, last = math.MaxInt64, math.MinInt64
	for i := range rep.Windows {
		for _, windows := range rep.Windows[i] {
			for w := range windows {
				first, last = min(first, w), max(last, w)
			}
		}
		for _, windows := range rep.Models[i] {
			for w := range windows {
				first, last = min(first, w), max(last, w)
			}
		}
	}
	return first, last
}

func (r *rollout) takeReport() Report {
	rep := Report{Prompt: r.prompt, RolloutID: r.id}
	for i := range r.cohorts {
		c := &r.cohorts[i]
		rep.Versions[i] = c.version
		rep.Windows[i] = make(map[string]map[int64]*stats.Stat, len(c.signals))
		for attr, sig := range c.signals {
			if len(sig.pending) == 0 {
				continue
			}
			rep.Windows[i][attr] = sig.pending
			sig.pending = make(map[int64]*stats.Stat, 1)
		}
		if len(c.models) > 0 {
			rep.Models[i], c.models = c.models, nil
		}
	}
	r.dirty = false
	return rep
}
