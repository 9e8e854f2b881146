// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"

import (
	"math"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// signal holds one signal's statistics in one cohort of a rollout.
type signal struct {
	// total counts every sample since the rollout was first seen.
	total *stats.Stat
	// pending holds the unreported increments by window start.
	pending map[int64]*stats.Stat
	// recent holds the statistics of recent windows, window w in slot (w / size) mod
	// len(recent): a bounded history from which the current step is totalled. A window
	// replaces an older one in its slot, so a stray timestamp evicts one window, not all.
	recent []recentWindow
	// firstWindow is the earliest window start of any sample.
	firstWindow int64
	// lostWindow is the latest window start of a sample that is no longer in recent
	// (math.MinInt64 when none): a step that starts after it is totalled exactly.
	lostWindow int64
}

type recentWindow struct {
	start int64
	stat  *stats.Stat // nil while the slot is empty
}

func newSignal(kind stats.Kind, historyWindows int) *signal {
	return &signal{
		total:       stats.New(kind),
		pending:     make(map[int64]*stats.Stat, 1),
		recent:      make([]recentWindow, historyWindows),
		firstWindow: math.MaxInt64,
		lostWindow:  math.MinInt64,
	}
}

// record adds one sample in window (of windowSeconds) to the total, the pending increments and
// the recent windows. It refuses the sample, recording nothing, when it would open a pending
// window beyond maxPending.
func (sig *signal) record(s *Sample, window, windowSeconds int64, maxPending int) bool {
	delta, ok := sig.pending[window]
	if !ok {
		if len(sig.pending) >= maxPending {
			return false
		}
		delta = stats.New(s.Kind)
		sig.pending[window] = delta
	}
	sig.firstWindow = min(sig.firstWindow, window)
	targets := [3]*stats.Stat{sig.total, delta, sig.recentFor(window, windowSeconds)}
	for _, st := range targets {
		if st == nil {
			continue
		}
		switch s.Kind {
		case stats.Proportion:
			st.AddOutcome(s.Pass)
		case stats.Mean:
			st.AddValue(s.Q)
		}
	}
	return true
}

// recentFor returns the statistics of window in the recent history, making room for it; nil
// when the window is older than the one holding its slot (the sample is then only lost to the
// step history).
func (sig *signal) recentFor(window, windowSeconds int64) *stats.Stat {
	n := int64(len(sig.recent))
	idx := (window / windowSeconds) % n
	if idx < 0 {
		idx += n
	}
	slot := &sig.recent[idx]
	switch {
	case slot.stat == nil:
		slot.start, slot.stat = window, stats.New(sig.total.Kind)
	case slot.start == window:
	case slot.start < window:
		sig.lostWindow = max(sig.lostWindow, slot.start)
		slot.start = window
		slot.stat.Reset()
	default:
		sig.lostWindow = max(sig.lostWindow, window)
		return nil
	}
	return slot.stat
}

// since totals the windows that start at or after minStart (Unix seconds). It returns nil when
// no such window holds samples, and exact false when some of the step's samples are no longer
// in the recent history (the total then undercounts the step).
func (sig *signal) since(minStart int64) (total *stats.Stat, exact bool) {
	if sig.total.N == 0 {
		return nil, true
	}
	if sig.firstWindow >= minStart {
		// Every sample belongs to the step.
		return sig.total.Clone(), true
	}
	for i := range sig.recent {
		w := &sig.recent[i]
		if w.stat == nil || w.start < minStart || w.stat.N == 0 {
			continue
		}
		if total == nil {
			total = w.stat.Clone()
		} else {
			total.Merge(w.stat)
		}
	}
	return total, sig.lostWindow < minStart
}
