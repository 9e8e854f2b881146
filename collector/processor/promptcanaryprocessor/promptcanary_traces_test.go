// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

func canaryCall(rollout, cohort string, attrs map[string]any) call {
	version := "3"
	if cohort == "canary" {
		version = "4"
	}
	return call{prompt: "support-reply", version: version, cohort: cohort, rollout: rollout, attrs: attrs}
}

func protoBytes(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

func TestSpansPassThroughUnchanged(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	td := traces(
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true, "prompt_canary.score.judge": 0.75}),
		canaryCall("ro-1", "stable", map[string]any{"gen_ai.usage.output_tokens": int64(120)}),
		call{prompt: "untracked"},
	)
	want := protoBytes(t, td)

	h.consume(t, td)

	all := h.sink.AllTraces()
	require.Len(t, all, 1)
	assert.Equal(t, want, protoBytes(t, all[0]))
}

func TestReadOnlyBatchesAreAccepted(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	assert.False(t, h.proc.Capabilities().MutatesData)
	td := traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true}))
	td.MarkReadOnly()
	h.consume(t, td)
	assert.Equal(t, 3-1, h.sink.SpanCount())
}

func TestAccumulatesSignalsPerRolloutAndCohort(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	h.consume(t, traces(
		canaryCall("ro-1", "canary", map[string]any{
			"prompt_canary.check.format_valid": true, "prompt_canary.score.judge": 0.7,
			"gen_ai.usage.input_tokens": int64(900), "gen_ai.usage.output_tokens": int64(120),
		}),
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false, "prompt_canary.score.judge": 0.8}),
		canaryCall("ro-1", "stable", map[string]any{"prompt_canary.check.format_valid": true, "prompt_canary.score.judge": int64(1)}),
	))

	snap, ok := h.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
	require.True(t, ok)
	js := func(v any) string { b, err := json.Marshal(v); require.NoError(t, err); return string(b) }
	assert.JSONEq(t, `{"kind": "proportion", "n": 2, "successes": 1}`, js(snap.Evidence.Canary["prompt_canary.check.format_valid"]))
	assert.JSONEq(t, `{"kind": "mean", "n": 2, "sum": "1500000", "sum_sq": "1130000000000"}`, js(snap.Evidence.Canary["prompt_canary.score.judge"]))
	assert.JSONEq(t, `{"kind": "mean", "n": 1, "sum": "900000000", "sum_sq": "810000000000000000"}`, js(snap.Evidence.Canary["gen_ai.usage.input_tokens"]))
	assert.JSONEq(t, `{"kind": "mean", "n": 1, "sum": "1000000", "sum_sq": "1000000000000"}`, js(snap.Evidence.Stable["prompt_canary.score.judge"]))
	assert.Equal(t, "4", snap.CanaryVersion)
	assert.Equal(t, "3", snap.StableVersion)
	assert.Equal(t, t0, snap.LastSample, "windows follow the span end time by default")

	metadatatest.AssertEqualProcessorPromptcanarySpansInspected(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 4}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPromptcanarySpansRecorded(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
}

func TestIgnoresSpansOutsideTheContract(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	check := map[string]any{"prompt_canary.check.format_valid": true}
	h.consume(t, traces(
		call{prompt: "support-reply", version: "3", cohort: "canary", attrs: check},                  // no rollout
		call{version: "3", cohort: "canary", rollout: "ro-1", attrs: check},                          // no prompt
		call{prompt: "support-reply", cohort: "canary", rollout: "ro-1", attrs: check},               // no version
		call{prompt: "support-reply", version: "3", cohort: "shadow", rollout: "ro-1", attrs: check}, // unknown cohort
		call{prompt: "support-reply", version: "3", rollout: "ro-1", attrs: check},                   // no cohort
	))
	assert.Zero(t, h.canary.tracker.Len())
	assert.Equal(t, 6, h.sink.SpanCount())
}

func TestSkipsValuesOfTheWrongType(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{
		"prompt_canary.check.format_valid": "yes",  // not a bool
		"prompt_canary.score.judge":        "high", // not a number
		"prompt_canary.score.huge":         1e13,   // beyond the accepted magnitude
		"prompt_canary.check.":             true,   // no name
		"prompt_canary.check.refusal":      false,
	})))
	snap, ok := h.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
	require.True(t, ok)
	assert.Len(t, snap.Evidence.Canary, 1)
	assert.Contains(t, snap.Evidence.Canary, "prompt_canary.check.refusal")
}

func TestIntegerPromptVersionsAreAccepted(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	td := traces(canaryCall("ro-1", "canary", nil))
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutInt(attrPromptVer, 7)
	h.consume(t, td)
	snap, ok := h.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
	require.True(t, ok)
	assert.Equal(t, "7", snap.CanaryVersion)
}

func TestOverflowIsCountedNotStored(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Limits.MaxRollouts = 2
	cfg.Limits.MaxSignalsPerCohort = 1
	h := newHarness(t, cfg, nil)

	var calls []call
	for i := range 50 {
		calls = append(calls, canaryCall("ro-"+strconv.Itoa(i), "canary", map[string]any{"prompt_canary.check.format_valid": true}))
	}
	calls = append(calls, canaryCall("ro-0", "canary", map[string]any{"prompt_canary.check.other": true}))
	h.consume(t, traces(calls...))

	assert.Equal(t, 2, h.canary.tracker.Len())
	assert.Equal(t, 52, h.sink.SpanCount(), "overflowing spans still pass through")
	metadatatest.AssertEqualProcessorPromptcanaryOverflow(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 48, Attributes: attribute.NewSet(attribute.String("limit", "rollouts"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("limit", "signals"))},
	}, metricdatatest.IgnoreTimestamp())
}

// TestCardinalityBoundUnderAMillionRolloutIDs pushes 1,000,000 spans with distinct rollout ids
// through the processor: state stays at the configured bound, every span passes through and
// every refused one is counted.
func TestCardinalityBoundUnderAMillionRolloutIDs(t *testing.T) {
	const total, batch = 1_000_000, 10_000
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Limits.MaxRollouts = 500
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	counter := &countingConsumer{} // a sink would keep every batch
	proc, canary, err := newTracesProcessor(context.Background(), metadatatest.NewSettings(tel), cfg, counter, judge.Sequential{})
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for range batch {
		a := spans.AppendEmpty().Attributes()
		a.PutStr(attrPromptName, "support-reply")
		a.PutStr(attrPromptVer, "4")
		a.PutStr(attrCohort, "canary")
		a.PutStr(attrRolloutID, "")
		a.PutBool("prompt_canary.check.format_valid", true)
	}
	for b := range total / batch {
		for i := range batch {
			spans.At(i).Attributes().PutStr(attrRolloutID, "ro-"+strconv.Itoa(b*batch+i))
		}
		require.NoError(t, proc.ConsumeTraces(context.Background(), td))
	}

	assert.Equal(t, total, counter.spans)
	assert.Equal(t, 500, canary.tracker.Len())
	metadatatest.AssertEqualProcessorPromptcanaryOverflow(t, tel, []metricdata.DataPoint[int64]{
		{Value: total - 500, Attributes: attribute.NewSet(attribute.String("limit", "rollouts"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPromptcanarySpansRecorded(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 500}}, metricdatatest.IgnoreTimestamp())
}

func TestReceivedTimestampUsesTheArrivalClock(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Timestamp = TimestampReceived
	h := newHarness(t, cfg, nil)
	arrival := t0.Add(42 * time.Minute)
	h.canary.now = func() time.Time { return arrival }
	h.consume(t, traces(canaryCall("ro-1", "canary", nil)))
	snap, _ := h.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
	assert.Equal(t, arrival, snap.LastSample)
}

func TestCallsOfNoRolloutCountInTheirVersionsLiveReport(t *testing.T) {
	h := newHarness(t, testConfig("http://127.0.0.1:1"), nil)
	live := func(version string, model string) call {
		attrs := map[string]any{"prompt_canary.check.format_valid": true}
		if model != "" {
			attrs["gen_ai.response.model"] = model
		}
		return call{prompt: "support-reply", version: version, cohort: "stable", attrs: attrs}
	}
	h.consume(t, traces(
		live("3", "gpt-4o-2024-08-06"),
		live("3", "gpt-4o-2024-11-20"),
		live("0", ""),  // an application's fallback template: no version to watch
		live("v3", ""), // not a registry version
		call{prompt: "support-reply", version: "3", cohort: "canary", attrs: map[string]any{"prompt_canary.check.format_valid": true}},
	))
	assert.Equal(t, 1, h.canary.tracker.Len())
	snap, ok := h.canary.tracker.Snapshot("support-reply", "live:3", time.Time{})
	require.True(t, ok)
	assert.Equal(t, int64(2), snap.Evidence.Stable["prompt_canary.check.format_valid"].N)

	reports := h.canary.tracker.TakeReports(-1)
	require.Len(t, reports, 1)
	assert.Equal(t, "live:3", reports[0].RolloutID)
	assert.Len(t, reports[0].Models[tracker.Stable], 2)
}
