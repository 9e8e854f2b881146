// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReportsCountTheCallsPerResponseModelOnce(t *testing.T) {
	tr := New(limits(), nil)
	for i, model := range []string{"gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", ""} {
		o := obs("live:3", Stable, t0.Add(time.Duration(i)*time.Second), check(formatValid, true))
		o.Model = model
		tr.Observe(o)
	}
	reports := tr.TakeReports(-1)
	require.Len(t, reports, 1)
	w := t0.Unix()
	assert.Equal(t, map[string]map[int64]int64{"gpt-4o-2024-08-06": {w: 2}, "gpt-4o-2024-11-20": {w: 1}}, reports[0].Models[Stable])
	assert.Nil(t, reports[0].Models[Canary])
	assert.Empty(t, tr.TakeReports(-1), "handed over once")
}

func TestResponseModelsStayWithinTheSignalBound(t *testing.T) {
	tr := New(limits(), nil) // four signals per cohort: four models too
	var refusals []Refusal
	for _, model := range []string{"a", "b", "c", "d", "e"} {
		o := obs("live:3", Stable, t0)
		o.Model = model
		_, refusal := tr.Observe(o)
		refusals = append(refusals, refusal)
	}
	assert.Equal(t, []Refusal{Accepted, Accepted, Accepted, Accepted, RefusedSignals}, refusals)
	reports := tr.TakeReports(-1)
	require.Len(t, reports, 1)
	assert.Len(t, reports[0].Models[Stable], 4)
}

func TestRestorePutsResponseModelsBack(t *testing.T) {
	tr := New(limits(), nil)
	o := obs("live:3", Stable, t0, check(formatValid, true))
	o.Model = "m1"
	tr.Observe(o)
	undelivered := tr.TakeReports(-1)
	require.Len(t, undelivered, 1)
	tr.Observe(o)
	assert.Equal(t, Accepted, tr.Restore(undelivered[0]))
	next := tr.TakeReports(-1)
	require.Len(t, next, 1)
	assert.Equal(t, map[string]map[int64]int64{"m1": {t0.Unix(): 2}}, next[0].Models[Stable])
}
