// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTakeReportsLeavesRolloutsBeyondTheLimitForLater(t *testing.T) {
	tr := New(limits(), nil)
	for _, id := range []string{"a", "b", "c"} {
		tr.Observe(obs(id, Canary, t0, check(formatValid, true)))
	}
	assert.Empty(t, tr.TakeReports(0))
	first := tr.TakeReports(2)
	require.Len(t, first, 2)
	rest := tr.TakeReports(2)
	require.Len(t, rest, 1, "the rollout left out keeps its increments")
	assert.NotContains(t, []string{first[0].RolloutID, first[1].RolloutID}, rest[0].RolloutID)
	assert.Equal(t, int64(1), rest[0].Windows[Canary][formatValid][t0.Unix()].N)
	assert.Empty(t, tr.TakeReports(-1))
}

func TestEvictIdleKeepsRolloutsWhoseReportFindsNoRoom(t *testing.T) {
	c := &clock{now: t0}
	l := limits()
	l.IdleTimeout = time.Minute
	tr := New(l, c.Now)
	tr.Observe(obs("a", Canary, t0, check(formatValid, true)))
	tr.Observe(obs("b", Canary, t0, check(formatValid, true)))
	c.now = t0.Add(2 * time.Minute)

	first := tr.EvictIdle(1)
	require.Len(t, first, 1)
	assert.Equal(t, 1, tr.Len(), "the other idle rollout waits for room for its final report")
	second := tr.EvictIdle(1)
	require.Len(t, second, 1)
	assert.NotEqual(t, first[0].RolloutID, second[0].RolloutID)
	assert.Zero(t, tr.Len())
}

func TestRestorePutsIncrementsBackForTheNextReport(t *testing.T) {
	tr := New(limits(), nil)
	tr.Observe(obs("a", Canary, t0, check(formatValid, true), score(judgeScore, 0.5)))
	tr.Observe(obs("a", Stable, t0.Add(time.Minute), check(formatValid, false)))
	undelivered := tr.TakeReports(-1)
	require.Len(t, undelivered, 1)

	// Spans arrive meanwhile, in the same and in a new window.
	tr.Observe(obs("a", Canary, t0, check(formatValid, false), score(judgeScore, 0.25)))
	tr.Observe(obs("a", Canary, t0.Add(2*time.Minute), check(formatValid, true)))
	assert.Equal(t, Accepted, tr.Restore(undelivered[0]))

	next := tr.TakeReports(-1)
	require.Len(t, next, 1)
	w0, w1, w2 := t0.Unix(), t0.Unix()+60, t0.Unix()+120
	assert.JSONEq(t, `{"kind": "proportion", "n": 2, "successes": 1}`, asJSON(t, next[0].Windows[Canary][formatValid][w0]))
	assert.JSONEq(t, `{"kind": "proportion", "n": 1, "successes": 1}`, asJSON(t, next[0].Windows[Canary][formatValid][w2]))
	assert.JSONEq(t, `{"kind": "mean", "n": 2, "sum": "750000", "sum_sq": "312500000000"}`, asJSON(t, next[0].Windows[Canary][judgeScore][w0]))
	assert.JSONEq(t, `{"kind": "proportion", "n": 1, "successes": 0}`, asJSON(t, next[0].Windows[Stable][formatValid][w1]))

	snap, _ := tr.Snapshot("support-reply", "a", time.Time{})
	assert.Equal(t, int64(3), snap.Evidence.Canary[formatValid].N, "totals already held the increments")
}

func TestRestoreTracksAnEvictedRolloutAgainWithinTheBound(t *testing.T) {
	c := &clock{now: t0}
	l := limits()
	l.MaxRollouts = 1
	l.IdleTimeout = time.Minute
	tr := New(l, c.Now)
	tr.Observe(obs("a", Canary, t0, check(formatValid, true)))
	c.now = t0.Add(2 * time.Minute)
	final := tr.EvictIdle(-1)
	require.Len(t, final, 1)
	require.Zero(t, tr.Len())

	// Room: tracked again, and reported (then forgotten) at the next eviction.
	assert.Equal(t, Accepted, tr.Restore(final[0]))
	assert.Equal(t, 1, tr.Len())
	snap, ok := tr.Snapshot("support-reply", "a", t0)
	require.True(t, ok)
	assert.Equal(t, int64(1), snap.Evidence.Canary[formatValid].N)
	again := tr.EvictIdle(-1)
	require.Len(t, again, 1)
	assert.Equal(t, int64(1), again[0].Windows[Canary][formatValid][t0.Unix()].N)
	assert.Equal(t, "3", again[0].Versions[Canary])

	// No room: the bound refuses, and the caller counts the loss.
	tr.Observe(obs("b", Canary, c.now, check(formatValid, true)))
	assert.Equal(t, RefusedRollouts, tr.Restore(again[0]))
	assert.Equal(t, 1, tr.Len())
}
