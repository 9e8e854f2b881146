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
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadata"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
)

// lateResult is one gen_ai.evaluation.result log record, as the Python instrumentation emits
// it for a late score (judge, moderation, feedback) of a call of rollout ro-1.
type lateResult struct {
	cohort    string
	eventName string // the record's event name; "" leaves it unset
	at        time.Time
	attrs     map[string]any
}

// judgeScore is the LLM judge's late score of a call in cohort.
func judgeScore(cohort string, value float64) lateResult {
	return lateResult{cohort: cohort, eventName: evaluationEvent, attrs: map[string]any{
		attrEvaluationName: "judge", attrEvaluationValue: value, "gen_ai.response.id": "chatcmpl-1",
	}}
}

// lateCheck is a late check outcome (moderation, say), with the value and label Python writes.
func lateCheck(cohort, name string, passed bool) lateResult {
	value, label := 0.0, "fail"
	if passed {
		value, label = 1.0, "pass"
	}
	return lateResult{cohort: cohort, eventName: evaluationEvent, attrs: map[string]any{
		attrEvaluationName: name, attrEvaluationValue: value, attrEvaluationLabel: label,
	}}
}

// logs builds one resource with one scope holding the results, plus an unrelated application
// log record.
func logs(results ...lateResult) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "support-bot")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("otel_prompt_canary")
	for i, r := range results {
		record := sl.LogRecords().AppendEmpty()
		record.SetEventName(r.eventName)
		record.SetTraceID(pcommon.TraceID{byte(i + 1)})
		record.SetSpanID(pcommon.SpanID{byte(i + 1)})
		at := r.at
		if at.IsZero() {
			at = t0
		}
		record.SetTimestamp(pcommon.NewTimestampFromTime(at))
		record.SetObservedTimestamp(pcommon.NewTimestampFromTime(at))
		base := map[string]any{}
		if r.cohort != "" {
			version := "3"
			if r.cohort == "canary" {
				version = "4"
			}
			base = map[string]any{attrPromptName: "support-reply", attrPromptVer: version, attrCohort: r.cohort, attrRolloutID: "ro-1"}
		}
		if err := record.Attributes().FromRaw(merge(base, r.attrs)); err != nil {
			panic(err)
		}
		// An attribute set to nil is left out.
		record.Attributes().RemoveIf(func(_ string, v pcommon.Value) bool { return v.Type() == pcommon.ValueTypeEmpty })
	}
	app := sl.LogRecords().AppendEmpty()
	app.Body().SetStr("GET /healthz 200")
	app.SetSeverityText("INFO")
	return ld
}

// logsHarness is a started traces and logs processor pair of one component configuration,
// sharing one canaryProcessor, as the Collector builds them for two pipelines.
type logsHarness struct {
	traces    *harness
	logs      *consumertest.LogsSink
	logsProc  processor.Logs
	shutdowns []func(context.Context) error
}

func newLogsHarness(t *testing.T, cfg *Config, j judge.Evaluator) *logsHarness {
	t.Helper()
	if j == nil {
		j = judge.Sequential{}
	}
	shared := newSharedProcessors(j)
	h := &harness{sink: new(consumertest.TracesSink), tel: componenttest.NewTelemetry()}
	set := metadatatest.NewSettings(h.tel)
	tp, canary, err := shared.traces(context.Background(), set, cfg, h.sink)
	require.NoError(t, err)
	sink := new(consumertest.LogsSink)
	lp, same, err := shared.logs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.Same(t, canary, same, "one processor per component configuration")
	for _, c := range []interface {
		Start(context.Context, component.Host) error
	}{tp, lp} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	}
	h.proc, h.canary = tp, canary
	lh := &logsHarness{traces: h, logs: sink, logsProc: lp, shutdowns: []func(context.Context) error{tp.Shutdown, lp.Shutdown}}
	t.Cleanup(func() {
		for _, shutdown := range lh.shutdowns {
			require.NoError(t, shutdown(context.Background()))
		}
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return lh
}

func (lh *logsHarness) consume(t *testing.T, ld plog.Logs) {
	t.Helper()
	require.NoError(t, lh.logsProc.ConsumeLogs(context.Background(), ld))
}

func TestLogRecordsPassThroughUnchanged(t *testing.T) {
	lh := newLogsHarness(t, testConfig("http://127.0.0.1:1"), nil)
	ld := logs(judgeScore("canary", 0.4), lateCheck("stable", "safety", true), lateResult{eventName: "other"})
	marshaler := &plog.ProtoMarshaler{}
	want, err := marshaler.MarshalLogs(ld)
	require.NoError(t, err)
	ld.MarkReadOnly() // the processor never writes
	lh.consume(t, ld)
	all := lh.logs.AllLogs()
	require.Len(t, all, 1)
	got, err := marshaler.MarshalLogs(all[0])
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// TestLateResultsCountIntoTheirSignal pins the mapping of a late result to its signal.
func TestLateResultsCountIntoTheirSignal(t *testing.T) {
	withAttrs := func(r lateResult, attrs map[string]any) lateResult {
		r.attrs = merge(merge(map[string]any{}, r.attrs), attrs)
		return r
	}
	named := func(r lateResult, eventName string) lateResult {
		r.eventName = eventName
		return r
	}
	without := func(r lateResult, key string) lateResult {
		r.attrs = merge(map[string]any{}, r.attrs)
		delete(r.attrs, key)
		return r
	}
	tests := []struct {
		name   string
		result lateResult
		want   map[string]string // canary signal -> statistics (JSON)
	}{
		{"a judge score is a mean", judgeScore("canary", 0.4),
			map[string]string{"prompt_canary.score.judge": `{"kind": "mean", "n": 1, "sum": "400000", "sum_sq": "160000000000"}`}},
		{"an integer score", withAttrs(judgeScore("canary", 0), map[string]any{attrEvaluationValue: int64(3)}),
			map[string]string{"prompt_canary.score.judge": `{"kind": "mean", "n": 1, "sum": "3000000", "sum_sq": "9000000000000"}`}},
		{"a passed check is a proportion", lateCheck("canary", "safety", true),
			map[string]string{"prompt_canary.check.safety": `{"kind": "proportion", "n": 1, "successes": 1}`}},
		{"a failed check", lateCheck("canary", "safety", false),
			map[string]string{"prompt_canary.check.safety": `{"kind": "proportion", "n": 1, "successes": 0}`}},
		{"the label decides a check, whatever the value", withAttrs(lateCheck("canary", "safety", true), map[string]any{attrEvaluationValue: 0.2}),
			map[string]string{"prompt_canary.check.safety": `{"kind": "proportion", "n": 1, "successes": 1}`}},
		{"a check without a value", without(lateCheck("canary", "safety", false), attrEvaluationValue),
			map[string]string{"prompt_canary.check.safety": `{"kind": "proportion", "n": 1, "successes": 0}`}},
		{"another label leaves a score", withAttrs(judgeScore("canary", 0.9), map[string]any{attrEvaluationLabel: "relevant"}),
			map[string]string{"prompt_canary.score.judge": `{"kind": "mean", "n": 1, "sum": "900000", "sum_sq": "810000000000"}`}},
		{"the event name as an attribute", withAttrs(named(judgeScore("canary", 0.5), ""), map[string]any{attrEventName: evaluationEvent}),
			map[string]string{"prompt_canary.score.judge": `{"kind": "mean", "n": 1, "sum": "500000", "sum_sq": "250000000000"}`}},
		{"a failed evaluation", lateResult{cohort: "canary", eventName: evaluationEvent, attrs: map[string]any{attrEvaluationName: "judge", attrErrorType: "timeout"}}, nil},
		{"an error beside a value", withAttrs(judgeScore("canary", 0.5), map[string]any{attrErrorType: "parse"}), nil},
		{"no evaluation name", without(judgeScore("canary", 0.5), attrEvaluationName), nil},
		{"an empty evaluation name", withAttrs(judgeScore("canary", 0.5), map[string]any{attrEvaluationName: ""}), nil},
		{"no value and no label", without(judgeScore("canary", 0.5), attrEvaluationValue), nil},
		{"a value that is not a number", withAttrs(judgeScore("canary", 0.5), map[string]any{attrEvaluationValue: "high"}), nil},
		{"a value beyond the accepted magnitude", withAttrs(judgeScore("canary", 0.5), map[string]any{attrEvaluationValue: 1e13}), nil},
		{"another event", named(judgeScore("canary", 0.5), "gen_ai.client.inference.operation.details"), nil},
		{"no event name", named(judgeScore("canary", 0.5), ""), nil},
		{"no rollout (a call outside any rollout)", withAttrs(judgeScore("canary", 0.5), map[string]any{attrRolloutID: nil}), nil},
		{"no prompt version", withAttrs(judgeScore("canary", 0.5), map[string]any{attrPromptVer: nil}), nil},
		{"an unknown cohort", withAttrs(judgeScore("canary", 0.5), map[string]any{attrCohort: "shadow"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lh := newLogsHarness(t, testConfig("http://127.0.0.1:1"), nil)
			lh.consume(t, logs(tt.result))
			assert.Equal(t, 2, lh.logs.LogRecordCount(), "every record passes through")
			recorded := int64(0)
			if tt.want == nil {
				assert.Zero(t, lh.traces.canary.tracker.Len())
			} else {
				recorded = 1
				snap, ok := lh.traces.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
				require.True(t, ok)
				got := map[string]string{}
				for attr, st := range snap.Evidence.Canary {
					b, err := json.Marshal(st)
					require.NoError(t, err)
					got[attr] = string(b)
				}
				require.Len(t, got, len(tt.want))
				for attr, stats := range tt.want {
					assert.JSONEq(t, stats, got[attr], attr)
				}
				assert.Equal(t, "4", snap.CanaryVersion)
				assert.Empty(t, snap.Evidence.Stable)
			}
			metadatatest.AssertEqualProcessorPromptcanaryLogRecordsInspected(t, lh.traces.tel,
				[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
			if recorded > 0 {
				metadatatest.AssertEqualProcessorPromptcanaryLogRecordsRecorded(t, lh.traces.tel,
					[]metricdata.DataPoint[int64]{{Value: recorded}}, metricdatatest.IgnoreTimestamp())
			}
		})
	}
}

// TestSpansAndLateResultsShareOneRollout: a span's checks and the late judge scores of the same
// rollout land in one set of per-cohort windows and leave in one report.
func TestSpansAndLateResultsShareOneRollout(t *testing.T) {
	cp := newControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.ReportInterval = 50 * time.Millisecond
	lh := newLogsHarness(t, cfg, nil)

	lh.traces.consume(t, traces(
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true}),
		canaryCall("ro-1", "stable", map[string]any{"prompt_canary.check.format_valid": true}),
	))
	lh.consume(t, logs(judgeScore("canary", 0.4), judgeScore("canary", 0.5), judgeScore("stable", 0.9)))
	assert.Equal(t, 1, lh.traces.canary.tracker.Len())

	require.Eventually(t, func() bool { return len(cp.accepted(reportPath)) == 1 }, waitFor, tick)
	time.Sleep(3 * cfg.ReportInterval)
	reports := cp.accepted(reportPath)
	require.Len(t, reports, 1, "one report for the rollout, whatever the signal of its samples")
	rep := decode(t, reports[0].body)
	window := strconv.FormatInt(t0.Unix(), 10)
	assert.Equal(t, map[string]any{
		"prompt_canary.check.format_valid": map[string]any{window: map[string]any{"kind": "proportion", "n": 1.0, "successes": 1.0}},
		"prompt_canary.score.judge":        map[string]any{window: map[string]any{"kind": "mean", "n": 2.0, "sum": "900000", "sum_sq": "410000000000"}},
	}, rep["canary"])
	assert.Equal(t, map[string]any{
		"prompt_canary.check.format_valid": map[string]any{window: map[string]any{"kind": "proportion", "n": 1.0, "successes": 1.0}},
		"prompt_canary.score.judge":        map[string]any{window: map[string]any{"kind": "mean", "n": 1.0, "sum": "900000", "sum_sq": "810000000000"}},
	}, rep["stable"])

	metadatatest.AssertEqualProcessorPromptcanarySpansRecorded(t, lh.traces.tel,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPromptcanaryLogRecordsRecorded(t, lh.traces.tel,
		[]metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
}

// TestTheLastPipelineShutsTheSharedProcessorDown: the traces pipeline's processor stops first;
// late results keep counting and the logs pipeline's shutdown sends the last report of both.
func TestTheLastPipelineShutsTheSharedProcessorDown(t *testing.T) {
	cp := newControlPlane(t)
	lh := newLogsHarness(t, testConfig(cp.URL), nil) // report interval of an hour
	lh.traces.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true})))

	require.NoError(t, lh.traces.proc.Shutdown(context.Background()))
	require.NoError(t, lh.traces.proc.Shutdown(context.Background()), "twice releases once")
	assert.Empty(t, cp.accepted(reportPath), "the logs pipeline still runs")
	lh.consume(t, logs(judgeScore("canary", 0.25)))

	require.NoError(t, lh.shutdowns[1](context.Background()))
	reports := cp.accepted(reportPath)
	require.Len(t, reports, 1)
	canary := decode(t, reports[0].body)["canary"].(map[string]any)
	assert.Contains(t, canary, "prompt_canary.check.format_valid")
	assert.Contains(t, canary, "prompt_canary.score.judge")
}

func TestLateResultOverflowIsCountedNotStored(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Limits.MaxRollouts = 1
	cfg.Limits.MaxSignalsPerCohort = 1
	lh := newLogsHarness(t, cfg, nil)
	lh.traces.consume(t, traces(canaryCall("ro-0", "canary", map[string]any{"prompt_canary.check.format_valid": true})))

	lh.consume(t, logs(judgeScore("canary", 0.5), judgeScore("canary", 0.6)))
	lh.traces.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true})))
	assert.Equal(t, 1, lh.traces.canary.tracker.Len())
	assert.Equal(t, 3, lh.logs.LogRecordCount(), "every record passes through")
	assert.Equal(t, 4, lh.traces.sink.SpanCount(), "every span passes through")
	metadatatest.AssertEqualProcessorPromptcanaryOverflow(t, lh.traces.tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("limit", "rollouts"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestLateResultsAreWindowedByTheirTimestamp(t *testing.T) {
	later := t0.Add(5 * time.Minute)
	arrival := t0.Add(42 * time.Minute)
	unset := func(r lateResult, observed bool) plog.Logs {
		ld := logs(r)
		record := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		record.SetTimestamp(0)
		if !observed {
			record.SetObservedTimestamp(0)
		}
		return ld
	}
	tests := []struct {
		name      string
		timestamp string
		ld        plog.Logs
		want      time.Time
	}{
		{"the record's timestamp", TimestampSpanEnd, logs(lateResult{cohort: "canary", eventName: evaluationEvent, at: later, attrs: judgeScore("canary", 0.5).attrs}), later},
		{"its observed timestamp when unset", TimestampSpanEnd, unset(lateResult{cohort: "canary", eventName: evaluationEvent, at: later, attrs: judgeScore("canary", 0.5).attrs}, true), later},
		{"the arrival time when both are unset", TimestampSpanEnd, unset(judgeScore("canary", 0.5), false), arrival},
		{"the arrival time when asked", TimestampReceived, logs(judgeScore("canary", 0.5)), arrival},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1")
			cfg.Timestamp = tt.timestamp
			lh := newLogsHarness(t, cfg, nil)
			lh.traces.canary.now = func() time.Time { return arrival }
			lh.consume(t, tt.ld)
			snap, ok := lh.traces.canary.tracker.Snapshot("support-reply", "ro-1", time.Time{})
			require.True(t, ok)
			assert.Equal(t, tt.want, snap.LastSample)
		})
	}
}

// TestTheJudgeRollsBackOnLateScores runs the real judge on a policy whose only rule is on the
// judge score, fed by late results alone: the alert is the one a span's score would raise.
func TestTheJudgeRollsBackOnLateScores(t *testing.T) {
	cp := newControlPlane(t)
	judgePolicy := `{"alpha": 0.05,
 "ramp": {"steps": [50.0, 100.0], "min_duration_seconds": 0.0, "min_samples": 30},
 "signals": [{"name": "judge", "kind": "mean", "harmful": "decrease"}],
 "rules": [{"signal": "judge", "type": "relative", "margin": 0.05, "action": "rollback"}]}`
	cp.policies.Store(activeRollout("ro-1", judgePolicy, t0.Add(-time.Hour)))
	lh := newLogsHarness(t, judgedConfig(cp.URL), nil)
	require.Eventually(t, func() bool { return lh.traces.canary.policies.Len() == 1 }, waitFor, tick)

	var results []lateResult
	for i := range 100 {
		results = append(results, judgeScore("stable", 0.8+0.1*float64(i%3)), judgeScore("canary", 0.4+0.1*float64(i%3)))
	}
	lh.consume(t, logs(results...))
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	alert := cp.accepted(alertPath)[0]
	assert.True(t, alert.signed)
	body := decode(t, alert.body)
	assert.Equal(t, "rollback", body["action"])
	assert.Equal(t, "judge.relative", body["rule"])
	ev := body["evidence"].(map[string]any)
	assert.Equal(t, "prompt_canary.score.judge", ev["signal"])
	assert.InDelta(t, -0.4, ev["estimate"], 1e-9)
	assert.InDelta(t, 100, ev["canary_samples"], 0)
}

// TestTheFactorySharesOneProcessorPerConfiguration: through the public factory, the traces and
// logs processors the Collector creates for one component (one configuration value) report
// their samples together; another component's configuration gets its own processor.
func TestTheFactorySharesOneProcessorPerConfiguration(t *testing.T) {
	cp := newControlPlane(t)
	factory := NewFactory()
	cfg, other := testConfig(cp.URL), testConfig(cp.URL)
	other.Source = "other-gateway"
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()

	tp, err := factory.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	lp, err := factory.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	op, err := factory.CreateLogs(ctx, set, other, consumertest.NewNop())
	require.NoError(t, err)
	for _, c := range []component.Component{tp, lp, op} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
	}
	require.NoError(t, tp.ConsumeTraces(ctx, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true}))))
	require.NoError(t, lp.ConsumeLogs(ctx, logs(judgeScore("canary", 0.5))))
	require.NoError(t, op.ConsumeLogs(ctx, logs(judgeScore("canary", 0.7))))
	for _, c := range []component.Component{tp, lp, op} {
		require.NoError(t, c.Shutdown(ctx))
	}

	bySource := map[string]map[string]any{}
	for _, r := range cp.accepted(reportPath) {
		body := decode(t, r.body)
		bySource[body["source"].(string)] = body["canary"].(map[string]any)
	}
	require.Len(t, bySource, 2)
	assert.Len(t, bySource["test-gateway"], 2, "the span's check and the late score in one report")
	assert.Len(t, bySource["other-gateway"], 1)
}
