// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// t0 is the start of a minute, so that windows of 60 s start at t0.
var t0 = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

const (
	formatValid = "prompt_canary.check.format_valid"
	judgeScore  = "prompt_canary.score.judge"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func limits() Limits {
	return Limits{MaxRollouts: 10, MaxSignalsPerCohort: 4, MaxPendingWindows: 4, StepWindows: 4, Window: time.Minute, IdleTimeout: time.Hour}
}

func obs(rollout string, cohort Cohort, at time.Time, samples ...Sample) *Observation {
	return &Observation{Prompt: "support-reply", Version: "3", RolloutID: rollout, Cohort: cohort, Time: at, Samples: samples}
}

func check(attr string, pass bool) Sample {
	return Sample{Attr: attr, Kind: stats.Proportion, Pass: pass}
}

func score(attr string, v float64) Sample {
	q, ok := stats.Quantize(v)
	if !ok {
		panic(v)
	}
	return Sample{Attr: attr, Kind: stats.Mean, Q: q}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestAccumulatesExactStatisticsPerCohort(t *testing.T) {
	tr := New(limits(), nil)
	for i, pass := range []bool{true, true, false, true} {
		at := t0.Add(time.Duration(i) * time.Second)
		rec, ref := tr.Observe(obs("r1", Canary, at, check(formatValid, pass), score(judgeScore, []float64{0.7, 0.8, 0.85, 1}[i])))
		require.True(t, rec)
		require.Equal(t, Accepted, ref)
	}
	o := obs("r1", Stable, t0.Add(-time.Minute), check(formatValid, true))
	o.Version = "2"
	tr.Observe(o)

	snap, ok := tr.Snapshot("support-reply", "r1", time.Time{})
	require.True(t, ok)
	assert.JSONEq(t, `{"kind": "proportion", "n": 4, "successes": 3}`, asJSON(t, snap.Evidence.Canary[formatValid]))
	assert.JSONEq(t, `{"kind": "mean", "n": 4, "sum": "3350000", "sum_sq": "2852500000000"}`, asJSON(t, snap.Evidence.Canary[judgeScore]))
	assert.JSONEq(t, `{"kind": "proportion", "n": 1, "successes": 1}`, asJSON(t, snap.Evidence.Stable[formatValid]))
	assert.Equal(t, "3", snap.CanaryVersion)
	assert.Equal(t, "2", snap.StableVersion)
	assert.Equal(t, t0.Add(-time.Minute), snap.FirstSample)
	assert.Equal(t, t0.Add(3*time.Second), snap.LastSample)
}

func TestSnapshotsAreCopies(t *testing.T) {
	tr := New(limits(), nil)
	tr.Observe(obs("r1", Canary, t0, check(formatValid, true)))
	snap, _ := tr.Snapshot("support-reply", "r1", time.Time{})
	tr.Observe(obs("r1", Canary, t0, check(formatValid, true)))
	assert.Equal(t, int64(1), snap.Evidence.Canary[formatValid].N)
	assert.Len(t, tr.Snapshots(nil), 1)
	assert.Empty(t, tr.Snapshots(func(string, string) (time.Time, bool) { return time.Time{}, false }))
}

func TestRolloutsKeyOnPromptAndRolloutID(t *testing.T) {
	tr := New(limits(), nil)
	tr.Observe(obs("r1", Canary, t0))
	other := obs("r1", Canary, t0)
	other.Prompt = "summariser"
	tr.Observe(other)
	assert.Equal(t, 2, tr.Len())
}

func TestRefusesNewRolloutsBeyondTheBound(t *testing.T) {
	l := limits()
	l.MaxRollouts = 2
	tr := New(l, nil)
	for _, id := range []string{"a", "b"} {
		rec, ref := tr.Observe(obs(id, Canary, t0))
		require.True(t, rec)
		require.Equal(t, Accepted, ref)
	}
	rec, ref := tr.Observe(obs("c", Canary, t0))
	assert.False(t, rec)
	assert.Equal(t, RefusedRollouts, ref)
	rec, _ = tr.Observe(obs("a", Stable, t0, check(formatValid, true)))
	assert.True(t, rec, "known rollouts keep recording")
	assert.Equal(t, 2, tr.Len())
}

func TestRefusesNewSignalsBeyondTheBoundButKeepsTheOthers(t *testing.T) {
	l := limits()
	l.MaxSignalsPerCohort = 2
	tr := New(l, nil)
	rec, ref := tr.Observe(obs("a", Canary, t0, check("prompt_canary.check.1", true), check("prompt_canary.check.2", true), check("prompt_canary.check.3", true)))
	assert.True(t, rec)
	assert.Equal(t, RefusedSignals, ref)
	snap, _ := tr.Snapshot("support-reply", "a", time.Time{})
	assert.Len(t, snap.Evidence.Canary, 2)
	_, ref = tr.Observe(obs("a", Stable, t0, check("prompt_canary.check.3", true)))
	assert.Equal(t, Accepted, ref, "each cohort has its own bound")
}

func TestRefusesSamplesInTooManyUnreportedWindows(t *testing.T) {
	l := limits()
	l.MaxPendingWindows = 2
	tr := New(l, nil)
	_, ref := tr.Observe(obs("a", Canary, t0, check(formatValid, true)))
	assert.Equal(t, Accepted, ref)
	_, ref = tr.Observe(obs("a", Canary, t0.Add(time.Minute), check(formatValid, true)))
	assert.Equal(t, Accepted, ref)
	_, ref = tr.Observe(obs("a", Canary, t0.Add(-time.Hour), check(formatValid, true)))
	assert.Equal(t, RefusedWindows, ref)
	snap, _ := tr.Snapshot("support-reply", "a", time.Time{})
	assert.Equal(t, int64(2), snap.Evidence.Canary[formatValid].N, "a refused sample counts nowhere, so totals equal the reports' sum")

	tr.TakeReports(-1)
	_, ref = tr.Observe(obs("a", Canary, t0.Add(-time.Hour), check(formatValid, true)))
	assert.Equal(t, Accepted, ref, "reporting frees the windows")
}

func TestRefusesOverlongIdentifiers(t *testing.T) {
	tr := New(limits(), nil)
	long := strings.Repeat("x", MaxKeyLength+1)
	rec, ref := tr.Observe(obs(long, Canary, t0))
	assert.False(t, rec)
	assert.Equal(t, RefusedKeyLength, ref)

	rec, ref = tr.Observe(obs("a", Canary, t0, check("prompt_canary.check."+long, true), check(formatValid, true)))
	assert.True(t, rec)
	assert.Equal(t, RefusedKeyLength, ref)
	snap, _ := tr.Snapshot("support-reply", "a", time.Time{})
	assert.Len(t, snap.Evidence.Canary, 1)
	assert.Equal(t, 1, tr.Len())
}

func TestTakeReportsHandsOverIncrementsByWindowOnce(t *testing.T) {
	tr := New(limits(), nil)
	tr.Observe(obs("a", Canary, t0.Add(10*time.Second), check(formatValid, true)))
	tr.Observe(obs("a", Canary, t0.Add(70*time.Second), check(formatValid, false), score(judgeScore, 0.5)))
	tr.Observe(obs("b", Stable, t0, check(formatValid, true)))

	first := tr.TakeReports(-1)
	require.Len(t, first, 2)
	var a Report
	for _, r := range first {
		if r.RolloutID == "a" {
			a = r
		}
	}
	assert.Equal(t, "3", a.Versions[Canary])
	assert.Empty(t, a.Windows[Stable])
	minute := t0.Unix()
	assert.JSONEq(t, `{
		"`+strconv.FormatInt(minute, 10)+`": {"kind": "proportion", "n": 1, "successes": 1},
		"`+strconv.FormatInt(minute+60, 10)+`": {"kind": "proportion", "n": 1, "successes": 0}
	}`, asJSON(t, a.Windows[Canary][formatValid]))
	assert.Empty(t, tr.TakeReports(-1), "nothing changed")

	tr.Observe(obs("a", Stable, t0, check(formatValid, false)))
	again := tr.TakeReports(-1)
	require.Len(t, again, 1)
	assert.Len(t, again[0].Windows[Stable], 1)
	assert.Empty(t, again[0].Windows[Canary], "canary increments were already reported")

	snap, _ := tr.Snapshot("support-reply", "a", time.Time{})
	assert.Equal(t, int64(2), snap.Evidence.Canary[formatValid].N, "totals are kept for the judge")
}

func TestWindowStartsAreAlignedToTheWindowSize(t *testing.T) {
	tr := New(Limits{Window: 10 * time.Second}, nil)
	assert.Equal(t, int64(1700000040), tr.windowStart(time.Unix(1700000049, 999)))
	assert.Equal(t, int64(-10), tr.windowStart(time.Unix(-1, 0)))
	assert.Equal(t, int64(10), tr.WindowSeconds())
}

func TestEvictIdleReportsUnsentIncrementsAndFreesTheSlot(t *testing.T) {
	c := &clock{now: t0}
	l := limits()
	l.MaxRollouts = 1
	l.IdleTimeout = time.Minute
	tr := New(l, c.Now)
	tr.Observe(obs("a", Canary, t0, check(formatValid, true)))
	tr.TakeReports(-1)
	tr.Observe(obs("a", Canary, t0, check(formatValid, true)))

	c.now = t0.Add(30 * time.Second)
	assert.Empty(t, tr.EvictIdle(-1))
	assert.Equal(t, 1, tr.Len())

	c.now = t0.Add(2 * time.Minute)
	final := tr.EvictIdle(-1)
	require.Len(t, final, 1)
	assert.Equal(t, int64(1), final[0].Windows[Canary][formatValid][t0.Unix()].N)
	assert.Zero(t, tr.Len())

	rec, _ := tr.Observe(obs("b", Canary, c.now))
	assert.True(t, rec, "the slot is free again")
}

// TestCardinalityStaysBoundedUnderAMillionRollouts feeds 1,000,000 distinct rollout ids: the
// tracker keeps MaxRollouts of them, refuses (and the caller counts) the rest, and its memory
// does not grow with the number of ids.
func TestCardinalityStaysBoundedUnderAMillionRollouts(t *testing.T) {
	const distinct = 1_000_000
	const bound = 1000
	tr := New(Limits{MaxRollouts: bound, MaxSignalsPerCohort: 8, MaxPendingWindows: 4, StepWindows: 16, Window: time.Minute, IdleTimeout: time.Hour}, nil)

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	samples := []Sample{check(formatValid, true), score(judgeScore, 0.8), score("gen_ai.usage.output_tokens", 120)}
	o := Observation{Prompt: "support-reply", Version: "7", Cohort: Canary, Time: t0, Samples: samples}
	refused := 0
	var atBound uint64
	for i := range distinct {
		o.RolloutID = "rollout-" + strconv.Itoa(i)
		if _, ref := tr.Observe(&o); ref == RefusedRollouts {
			refused++
		}
		if i == 2*bound {
			atBound = heap()
		}
	}
	assert.Equal(t, bound, tr.Len())
	assert.Equal(t, distinct-bound, refused, "every refused span is reported to the caller for counting")

	// From 2,000 ids to 1,000,000, the retained heap may not grow by more than a few MiB
	// (it would be hundreds of MiB if refused rollouts were kept).
	grown := int64(heap()) - int64(atBound)
	assert.Less(t, grown, int64(8<<20), "heap grew by %d bytes", grown)
}
