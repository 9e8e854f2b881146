// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
)

// stepTracker keeps 4 recent windows of 60 s and does not limit pending windows.
func stepTracker() *Tracker {
	l := limits()
	l.MaxPendingWindows = 1000
	return New(l, nil)
}

// canaryAt records n canary outcomes of format validity in the window starting at minute m
// after t0, with passes of them true.
func canaryAt(tr *Tracker, m, n, passes int) {
	at := t0.Add(time.Duration(m)*time.Minute + 30*time.Second)
	for i := range n {
		tr.Observe(obs("r1", Canary, at, check(formatValid, i < passes)))
	}
}

func stepOf(t *testing.T, tr *Tracker, start time.Time) judge.Snapshot {
	t.Helper()
	snap, ok := tr.Snapshot("support-reply", "r1", start)
	require.True(t, ok)
	require.NotNil(t, snap.StepEvidence)
	return snap
}

func TestStepEvidenceCountsTheWindowsFromTheStepStart(t *testing.T) {
	tr := stepTracker()
	canaryAt(tr, 0, 5, 5)
	canaryAt(tr, 1, 3, 2)
	canaryAt(tr, 2, 2, 0)
	tr.Observe(obs("r1", Stable, t0.Add(2*time.Minute), check(formatValid, true)))

	snap := stepOf(t, tr, t0.Add(time.Minute))
	assert.False(t, snap.StepEvidencePartial)
	assert.JSONEq(t, `{"kind": "proportion", "n": 5, "successes": 2}`, asJSON(t, snap.StepEvidence.Canary[formatValid]))
	assert.JSONEq(t, `{"kind": "proportion", "n": 1, "successes": 1}`, asJSON(t, snap.StepEvidence.Stable[formatValid]))
	assert.Equal(t, int64(10), snap.Evidence.Canary[formatValid].N, "the evidence is the whole rollout")

	// A window straddling the step start is left out, as the Python engine's
	// Report.snapshot(since=...) does: it counts windows by their start.
	snap = stepOf(t, tr, t0.Add(time.Minute+time.Nanosecond))
	assert.Equal(t, int64(2), snap.StepEvidence.Canary[formatValid].N)
	assert.NotContains(t, snap.StepEvidence.Stable, "x")

	snap = stepOf(t, tr, t0.Add(10*time.Minute))
	assert.Empty(t, snap.StepEvidence.Canary, "no sample since the step started")
	assert.Empty(t, snap.StepEvidence.Stable)
	assert.False(t, snap.StepEvidencePartial)

	none, _ := tr.Snapshot("support-reply", "r1", time.Time{})
	assert.Nil(t, none.StepEvidence, "no step start, no step evidence")
}

func TestAStepThatStartedBeforeEverySampleIsTheWholeEvidence(t *testing.T) {
	tr := stepTracker()
	for m := range 10 { // more windows than the history keeps
		canaryAt(tr, m, 1, 1)
	}
	snap := stepOf(t, tr, t0.Add(-time.Hour))
	assert.False(t, snap.StepEvidencePartial)
	assert.Equal(t, int64(10), snap.StepEvidence.Canary[formatValid].N)
}

func TestAStepOlderThanTheHistoryIsMarkedPartial(t *testing.T) {
	tr := stepTracker()
	for m := range 10 {
		canaryAt(tr, m, 1, 1)
	}
	// The history holds minutes 6..9; a step that started at minute 2 lost minutes 2..5.
	snap := stepOf(t, tr, t0.Add(2*time.Minute))
	assert.True(t, snap.StepEvidencePartial)
	assert.Equal(t, int64(4), snap.StepEvidence.Canary[formatValid].N, "what the history still holds")

	snap = stepOf(t, tr, t0.Add(6*time.Minute))
	assert.False(t, snap.StepEvidencePartial, "the history covers a step that started at minute 6")
	assert.Equal(t, int64(4), snap.StepEvidence.Canary[formatValid].N)
}

func TestLateAndStraySamplesOnlyCostTheirOwnWindow(t *testing.T) {
	tr := stepTracker()
	for m := range 4 {
		canaryAt(tr, m, 1, 1)
	}
	canaryAt(tr, 1000, 1, 1) // a clock far ahead: evicts the one window sharing its slot
	snap := stepOf(t, tr, t0.Add(time.Minute))
	assert.Equal(t, int64(4), snap.StepEvidence.Canary[formatValid].N, "minutes 1..3 and 1000")
	assert.False(t, snap.StepEvidencePartial, "only minute 0 was evicted, before the step")

}

func TestALateSampleOlderThanItsSlotMarksItsStepPartial(t *testing.T) {
	tr := stepTracker()
	for _, m := range []int{-4, 1, 2, 3, 4} { // minute 4 takes minute -4's slot
		canaryAt(tr, m, 1, 1)
	}
	canaryAt(tr, 0, 1, 1) // late: its slot holds minute 4 already
	snap := stepOf(t, tr, t0)
	assert.Equal(t, int64(6), snap.Evidence.Canary[formatValid].N, "the evidence has every sample")
	assert.Equal(t, int64(4), snap.StepEvidence.Canary[formatValid].N, "minutes 1..4")
	assert.True(t, snap.StepEvidencePartial, "the late sample belongs to the step but is not in the history")
}

func TestSnapshotsAskForEachRolloutsStep(t *testing.T) {
	tr := stepTracker()
	canaryAt(tr, 0, 2, 2)
	canaryAt(tr, 1, 3, 3)
	other := obs("r2", Canary, t0, check(formatValid, true))
	tr.Observe(other)

	snaps := tr.Snapshots(func(prompt, rolloutID string) (time.Time, bool) {
		if rolloutID == "r1" {
			return t0.Add(time.Minute), true
		}
		return time.Time{}, false
	})
	require.Len(t, snaps, 1)
	assert.Equal(t, "r1", snaps[0].RolloutID)
	assert.Equal(t, int64(3), snaps[0].StepEvidence.Canary[formatValid].N)
}
