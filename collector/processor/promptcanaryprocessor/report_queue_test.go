// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

// stalledControlPlane holds every request until release is closed, then adds up the check
// counts of the reports it accepted, once per webhook-id, by rollout.
type stalledControlPlane struct {
	*httptest.Server
	release chan struct{}

	mu    sync.Mutex
	seen  map[string]bool
	total map[string]int64
}

func newStalledControlPlane(t *testing.T) *stalledControlPlane {
	cp := &stalledControlPlane{release: make(chan struct{}), seen: map[string]bool{}, total: map[string]int64{}}
	cp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		<-cp.release
		var rep struct {
			RolloutID string                               `json:"rollout_id"`
			Canary    map[string]map[string]map[string]any `json:"canary"`
			Stable    map[string]map[string]map[string]any `json:"stable"`
		}
		if r.URL.Path != reportPath || json.Unmarshal(body, &rep) != nil {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if id := r.Header.Get(delivery.HeaderID); !cp.seen[id] {
			cp.seen[id] = true
			for _, windows := range rep.Canary[checkPrefix+"format_valid"] {
				cp.total[rep.RolloutID] += int64(windows["n"].(float64))
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(cp.Close)
	return cp
}

func (cp *stalledControlPlane) totals() map[string]int64 {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := make(map[string]int64, len(cp.total))
	for k, v := range cp.total {
		out[k] = v
	}
	return out
}

// TestAFullQueueDelaysReportsWithoutLosingIncrements stalls the control plane while the report
// loop runs with a queue of one: the rollouts whose reports find no room keep their
// increments, and once the control plane answers, its totals match every recorded span.
func TestAFullQueueDelaysReportsWithoutLosingIncrements(t *testing.T) {
	cp := newStalledControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.ReportInterval = 5 * time.Millisecond
	cfg.Webhook.QueueSize = 1
	h := newHarness(t, cfg, nil)

	want := map[string]int64{}
	for round := range 20 {
		for i := range 6 {
			id := "ro-" + strconv.Itoa(i)
			h.consume(t, traces(canaryCall(id, "canary", map[string]any{"prompt_canary.check.format_valid": round%2 == 0})))
			want[id]++
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * cfg.ReportInterval) // report ticks against a full queue
	close(cp.release)

	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, cp.totals()) }, waitFor, tick,
		"the control plane receives every increment")
	assert.Equal(t, want, cp.totals())
	_, err := h.tel.GetMetric("otelcol_processor_promptcanary_delivery_queue_dropped")
	assert.Error(t, err, "no report was dropped: the ones without room waited in the tracker")
}

// TestRolloutsTrackedIsCurrentBetweenReports reads the gauge with no report tick in between:
// it follows the tracker from the first span on.
func TestRolloutsTrackedIsCurrentBetweenReports(t *testing.T) {
	cp := newControlPlane(t)
	h := newHarness(t, testConfig(cp.URL), nil) // report interval of an hour

	metadatatest.AssertEqualProcessorPromptcanaryRolloutsTracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: 0}},
		metricdatatest.IgnoreTimestamp())
	h.consume(t, traces(
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true}),
		canaryCall("ro-2", "stable", map[string]any{"prompt_canary.check.format_valid": true}),
	))
	metadatatest.AssertEqualProcessorPromptcanaryRolloutsTracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}},
		metricdatatest.IgnoreTimestamp())
	h.consume(t, traces(canaryCall("ro-3", "canary", map[string]any{"prompt_canary.check.format_valid": true})))
	metadatatest.AssertEqualProcessorPromptcanaryRolloutsTracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: 3}},
		metricdatatest.IgnoreTimestamp())
}

// TestARefusedReportIsPutBackOrCountedAsOverflow sends reports to a sender that refuses them:
// their increments return to the tracker for the next report, and the ones a full rollout
// bound cannot take back are counted as overflow.
func TestARefusedReportIsPutBackOrCountedAsOverflow(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Limits.MaxRollouts = 1
	h := newHarness(t, cfg, nil)
	p := h.canary
	require.NoError(t, p.sender.Shutdown(context.Background())) // refuses every message now

	h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true})))
	p.enqueueReports(p.tracker.TakeReports(-1))
	reports := p.tracker.TakeReports(-1)
	require.Len(t, reports, 1, "the refused report's increments are back in the tracker")
	assert.Equal(t, int64(1), reports[0].Windows[tracker.Canary]["prompt_canary.check.format_valid"][t0.Unix()].N)

	// The rollout is forgotten and another one takes the only slot: nothing can take it back.
	p.now = func() time.Time { return t0.Add(48 * time.Hour) }
	require.Empty(t, p.tracker.EvictIdle(-1))
	h.consume(t, traces(canaryCall("ro-2", "canary", map[string]any{"prompt_canary.check.format_valid": true})))
	p.enqueueReports(reports)
	metadatatest.AssertEqualProcessorPromptcanaryOverflow(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("limit", "rollouts"))},
	}, metricdatatest.IgnoreTimestamp())
}
