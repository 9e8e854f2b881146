// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"

import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"

// Report holds one rollout's increments since its previous report, per cohort, signal
// attribute and window start (Unix seconds).
type Report struct {
	Prompt    string
	RolloutID string
	// Versions holds the last version seen in each cohort, indexed by Cohort.
	Versions [2]string
	// Windows holds the increments, indexed by Cohort.
	Windows [2]map[string]map[int64]*stats.Stat
}

// TakeReports hands over the unreported increments of every rollout that received samples
// since the last call, and forgets them.
func (t *Tracker) TakeReports() []Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Report
	for _, r := range t.rollouts {
		if r.dirty {
			out = append(out, r.takeReport())
		}
	}
	return out
}

// EvictIdle forgets rollouts that received no span for the idle timeout and returns their
// last unreported increments; a rollout seen again later starts afresh.
func (t *Tracker) EvictIdle() []Report {
	cutoff := t.now().Add(-t.limits.IdleTimeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Report
	for k, r := range t.rollouts {
		if !r.lastSeen.Before(cutoff) {
			continue
		}
		if r.dirty {
			out = append(out, r.takeReport())
		}
		delete(t.rollouts, k)
	}
	return out
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
	}
	r.dirty = false
	return rep
}
