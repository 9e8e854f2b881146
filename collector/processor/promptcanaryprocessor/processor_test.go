// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/payload"
)

const (
	alertPath  = "/v1/alerts/collector"
	reportPath = "/v1/reports"
	waitFor    = 10 * time.Second
	tick       = 5 * time.Millisecond
)

// rollbackJudge reaches a rollback verdict on every rollout with a canary sample.
func rollbackJudge(calls *atomic.Int32) judge.Evaluator {
	return judge.Func(func(r judge.Rollout) (judge.Verdict, error) {
		calls.Add(1)
		if len(r.Snapshot.Evidence.Canary) == 0 {
			return judge.Verdict{Decision: judge.DecisionContinue}, nil
		}
		bound := -0.02
		return judge.Verdict{
			Decision: judge.DecisionBreach,
			Action:   judge.Rollback,
			RuleID:   "format_valid.relative",
			Breached: []string{"format_valid.relative"},
			Step:     -1,
			Rules: []judge.RuleVerdict{{
				RuleID:    "format_valid.relative",
				Attribute: "prompt_canary.check.format_valid",
				Action:    judge.Rollback,
				Status:    judge.StatusBreach,
				Bound:     &bound,
				Summary:   "canary format validity is proven worse than stable",
			}},
		}, nil
	})
}

func TestReportsArePostedSignedAndCarryOnlyNewIncrements(t *testing.T) {
	cp := newControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.ReportInterval = 50 * time.Millisecond
	h := newHarness(t, cfg, nil)

	h.consume(t, traces(
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": true, "prompt_canary.score.judge": 0.7}),
		canaryCall("ro-1", "stable", map[string]any{"prompt_canary.check.format_valid": true}),
	))
	require.Eventually(t, func() bool { return len(cp.accepted(reportPath)) == 1 }, waitFor, tick)

	first := cp.accepted(reportPath)[0]
	assert.True(t, first.signed, "reports carry a valid Standard Webhooks signature")
	rep := decode(t, first.body)
	assert.Equal(t, first.id, rep["id"], "webhook-id is the report id")
	assert.Equal(t, "prompt_canary.report", rep["type"])
	assert.Equal(t, "test-gateway", rep["source"])
	assert.Equal(t, "collector", rep["origin"], "the control plane counts one origin per rollout")
	assert.Equal(t, "support-reply", rep["prompt"])
	assert.Equal(t, "ro-1", rep["rollout_id"])
	assert.InDelta(t, 60, rep["window_seconds"], 0)
	assert.Equal(t, map[string]any{"stable": "3", "canary": "4"}, rep["versions"])
	window := strconv.FormatInt(t0.Unix(), 10)
	assert.Equal(t, map[string]any{
		"prompt_canary.check.format_valid": map[string]any{window: map[string]any{"kind": "proportion", "n": 1.0, "successes": 1.0}},
		"prompt_canary.score.judge":        map[string]any{window: map[string]any{"kind": "mean", "n": 1.0, "sum": "700000", "sum_sq": "490000000000"}},
	}, rep["canary"])
	assert.Equal(t, map[string]any{
		"prompt_canary.check.format_valid": map[string]any{window: map[string]any{"kind": "proportion", "n": 1.0, "successes": 1.0}},
	}, rep["stable"])
	assert.Equal(t, "2026-11-27T04:00:00.000Z", rep["window_start"])
	assert.Equal(t, "2026-11-27T04:01:00.000Z", rep["window_end"])

	// Nothing new: no report. One more canary span: a report with that span only.
	time.Sleep(3 * cfg.ReportInterval)
	require.Len(t, cp.accepted(reportPath), 1)
	h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false})))
	require.Eventually(t, func() bool { return len(cp.accepted(reportPath)) == 2 }, waitFor, tick)
	second := decode(t, cp.accepted(reportPath)[1].body)
	assert.Equal(t, map[string]any{}, second["stable"])
	assert.Equal(t, map[string]any{
		"prompt_canary.check.format_valid": map[string]any{window: map[string]any{"kind": "proportion", "n": 1.0, "successes": 0.0}},
	}, second["canary"])
	assert.NotEqual(t, rep["id"], second["id"])

	// The server records a post before it answers; the processor counts it after the answer.
	waitForCount(t, h, "otelcol_processor_promptcanary_deliveries", 2)
	metadatatest.AssertEqualProcessorPromptcanaryDeliveries(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "report"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPromptcanaryRolloutsTracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp())
}

func TestShutdownSendsTheLastReport(t *testing.T) {
	cp := newControlPlane(t)
	h := newHarness(t, testConfig(cp.URL), nil) // report interval of an hour
	h.consume(t, traces(canaryCall("ro-9", "canary", map[string]any{"prompt_canary.check.format_valid": true})))

	require.NoError(t, h.proc.Shutdown(context.Background()))
	reports := cp.accepted(reportPath)
	require.Len(t, reports, 1)
	assert.Equal(t, "ro-9", decode(t, reports[0].body)["rollout_id"])
}

func TestVerdictsBecomeOneSignedAlertPerRolloutRuleAndAction(t *testing.T) {
	cp := newControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.Policy = PolicyConfig{Source: PolicySourceFile, File: "testdata/policy.yaml", RefreshInterval: time.Hour}
	cfg.EvaluationInterval = 20 * time.Millisecond
	var evaluations atomic.Int32
	h := newHarness(t, cfg, rollbackJudge(&evaluations))

	h.consume(t, traces(
		canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false}),
		call{prompt: "no-policy", version: "1", cohort: "canary", rollout: "ro-2",
			attrs: map[string]any{"prompt_canary.check.format_valid": false}},
	))
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	// The verdict holds at every later evaluation; it is still delivered once.
	start := evaluations.Load()
	require.Eventually(t, func() bool { return evaluations.Load() >= start+5 }, waitFor, tick)
	alerts := cp.accepted(alertPath)
	require.Len(t, alerts, 1, "a prompt without a policy is not judged; a verdict is sent once")

	a := alerts[0]
	assert.True(t, a.signed)
	body := decode(t, a.body)
	wantID := payload.AlertID("ro-1", "format_valid.relative", judge.Rollback)
	assert.Equal(t, wantID, a.id)
	assert.Equal(t, wantID, body["id"])
	assert.Equal(t, "prompt_canary.alert", body["type"])
	assert.Equal(t, "support-reply", body["prompt"])
	assert.Equal(t, "ro-1", body["rollout_id"])
	assert.Equal(t, "rollback", body["action"])
	assert.Equal(t, "format_valid.relative", body["rule"])
	assert.Equal(t, "canary format validity is proven worse than stable", body["reason"])
	evidence := body["evidence"].(map[string]any)
	assert.Equal(t, "prompt_canary.check.format_valid", evidence["signal"])
	assert.InDelta(t, -0.02, evidence["bound"], 0)
	assert.Equal(t, []any{"format_valid.relative"}, evidence["breached"])
	assert.NotEmpty(t, body["created_at"])

	metadatatest.AssertEqualProcessorPromptcanaryVerdicts(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("action", "rollback"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestAlertsAreRetriedUntilTheControlPlaneRecovers(t *testing.T) {
	cp := newControlPlane(t)
	cp.failAlerts.Store(3)
	cfg := testConfig(cp.URL)
	cfg.Policy = PolicyConfig{Source: PolicySourceFile, File: "testdata/policy.yaml", RefreshInterval: time.Hour}
	cfg.EvaluationInterval = 20 * time.Millisecond
	var evaluations atomic.Int32
	h := newHarness(t, cfg, rollbackJudge(&evaluations))

	h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false})))
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	assert.Equal(t, int32(4), cp.alertCalls.Load(), "three refusals, then the delivery")
	assert.True(t, cp.accepted(alertPath)[0].signed)

	waitForCount(t, h, "otelcol_processor_promptcanary_deliveries", 1)
	metadatatest.AssertEqualProcessorPromptcanaryDeliveryFailures(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("kind", "alert"), attribute.String("outcome", "retried"))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPromptcanaryDeliveries(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "alert"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestPoliciesArePolledFromTheControlPlane(t *testing.T) {
	cp := newControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.Policy = PolicyConfig{Source: PolicySourceControlPlane, RefreshInterval: 20 * time.Millisecond}
	cfg.EvaluationInterval = 20 * time.Millisecond
	var evaluations atomic.Int32
	h := newHarness(t, cfg, rollbackJudge(&evaluations))

	h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false})))
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, evaluations.Load(), "no policy yet, no evaluation")

	cp.policies.Store(`{"policies": {"support-reply": ` + formatPolicy + `}}`)
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	assert.Equal(t, "include=rollouts", cp.policyQuery.Load(), "the processor asks for the rollouts' ramp state")
	require.Eventually(t, func() bool { return cp.notModified.Load() >= 2 }, waitFor, tick,
		"an unchanged document is answered 304 to the ETag the processor sends back")
}

func TestAJudgeFailureNeverReachesThePipeline(t *testing.T) {
	cp := newControlPlane(t)
	cfg := testConfig(cp.URL)
	cfg.Policy = PolicyConfig{Source: PolicySourceFile, File: "testdata/policy.yaml", RefreshInterval: time.Hour}
	cfg.EvaluationInterval = 20 * time.Millisecond
	var calls atomic.Int32
	failing := judge.Func(func(judge.Rollout) (judge.Verdict, error) {
		if calls.Add(1)%2 == 0 {
			return judge.Verdict{}, errors.New("cannot read the policy")
		}
		panic("bug in the judge")
	})
	bad := judge.Func(func(judge.Rollout) (judge.Verdict, error) {
		if calls.Add(1)%2 == 0 {
			return judge.Verdict{Decision: judge.DecisionBreach, RuleID: "", Action: "explode"}, nil
		}
		return judge.Verdict{Decision: judge.DecisionBreach, RuleID: "r", Action: "explode"}, nil
	})
	for name, j := range map[string]judge.Evaluator{"failing": failing, "invalid verdicts": bad} {
		t.Run(name, func(t *testing.T) {
			calls.Store(0)
			h := newHarness(t, cfg, j)
			h.consume(t, traces(canaryCall("ro-1", "canary", map[string]any{"prompt_canary.check.format_valid": false})))
			time.Sleep(150 * time.Millisecond)
			h.consume(t, traces(canaryCall("ro-1", "canary", nil)))
			assert.Equal(t, 4, h.sink.SpanCount())
			assert.Empty(t, cp.accepted(alertPath))
		})
	}
}

func TestAnUnreachableControlPlaneNeverBlocksSpans(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1") // nothing listens there
	cfg.ReportInterval = 10 * time.Millisecond
	cfg.Policy = PolicyConfig{Source: PolicySourceControlPlane, RefreshInterval: 10 * time.Millisecond}
	cfg.Webhook.QueueSize = 2
	h := newHarness(t, cfg, nil)

	deadline := time.Now().Add(300 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		h.consume(t, traces(canaryCall("ro-"+strconv.Itoa(n%5), "canary", map[string]any{"prompt_canary.check.format_valid": true})))
		n++
	}
	assert.Equal(t, 2*n, h.sink.SpanCount())

	start := time.Now()
	require.NoError(t, h.proc.Shutdown(context.Background()))
	assert.Less(t, time.Since(start), 5*time.Second)
	got, err := h.tel.GetMetric("otelcol_processor_promptcanary_policy_refresh_failures")
	require.NoError(t, err)
	assert.Positive(t, got.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	proc, _, err := newTracesProcessor(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()),
		testConfig("http://127.0.0.1:1"), nil, judge.Sequential{})
	require.NoError(t, err)
	require.NoError(t, proc.Shutdown(context.Background()))
	require.NoError(t, proc.Shutdown(context.Background()))
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()), "start after shutdown does nothing")
}

// waitForCount waits until the sum of a counter's data points reaches want.
func waitForCount(t *testing.T, h *harness, name string, want int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		m, err := h.tel.GetMetric(name)
		if err != nil {
			return false
		}
		var total int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			total += dp.Value
		}
		return total >= want
	}, waitFor, tick)
}
