// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/payload"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
)

// formatPolicy pauses when the canary's format validity is proven worse than stable's by more
// than a point; steps need no minimum duration and 50 samples per cohort.
const formatPolicy = `{"alpha": 0.05,
 "ramp": {"steps": [50.0, 100.0], "min_duration_seconds": 0.0, "min_samples": 50},
 "signals": [{"name": "format_valid", "kind": "proportion", "harmful": "decrease"}],
 "rules": [{"signal": "format_valid", "type": "relative", "margin": 0.01, "action": "pause"}]}`

// activeRollout is GET /v1/policies?include=rollouts for one active rollout of support-reply,
// as the control plane answers it.
func activeRollout(rolloutID, policyDoc string, stepStartedAt time.Time) string {
	return fmt.Sprintf(`{"policies": {"support-reply": %[2]s},
 "rollouts": [{"prompt": "support-reply", "rollout_id": %[1]q, "state": "ramping",
   "stable_version": 3, "canary_version": 4, "canary_weight_bp": 5000, "step": 0, "ramp": [50.0, 100.0],
   "step_started_at": %[3]q, "started_at": %[3]q, "policy": %[2]s}]}`,
		rolloutID, policyDoc, stepStartedAt.UTC().Format(time.RFC3339Nano))
}

// formatTraffic is n stable calls, all valid, and n canary calls, 60% valid, ending at t0.
func formatTraffic(rollout string, n int) ptrace.Traces {
	calls := make([]call, 0, 2*n)
	for i := range n {
		calls = append(calls,
			canaryCall(rollout, "stable", map[string]any{"prompt_canary.check.format_valid": true}),
			canaryCall(rollout, "canary", map[string]any{"prompt_canary.check.format_valid": i%5 < 3}))
	}
	return traces(calls...)
}

func judgedConfig(endpoint string) *Config {
	cfg := testConfig(endpoint)
	cfg.Policy = PolicyConfig{Source: PolicySourceControlPlane, RefreshInterval: 20 * time.Millisecond}
	cfg.EvaluationInterval = 20 * time.Millisecond
	return cfg
}

// TestTheJudgeRaisesTheDecidedAction runs the real judge on a rollout the control plane
// lists: the canary's format validity is proven worse, the step is mature, the rule pauses.
//
// The judge evaluates on its own ticker, between any two spans of a batch: spans are recorded
// one at a time, and an anytime-valid test needs no batch boundary (each evaluation sees a
// consistent snapshot, and its alert carries that snapshot's evidence). So that the alert's
// evidence is exactly the 200 calls per cohort, the control plane lists the rollout only once
// all of them are recorded: until then the judge leaves it alone.
func TestTheJudgeRaisesTheDecidedAction(t *testing.T) {
	cp := newControlPlane(t)
	h := newHarness(t, judgedConfig(cp.URL), nil)

	h.consume(t, formatTraffic("ro-1", 200))
	h.consume(t, formatTraffic("ro-0", 200)) // a rollout the control plane does not list
	cp.policies.Store(activeRollout("ro-1", formatPolicy, t0.Add(-time.Hour)))
	require.Eventually(t, func() bool { return h.canary.policies.Len() == 1 }, waitFor, tick)
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	time.Sleep(5 * judgedConfig(cp.URL).EvaluationInterval)
	alerts := cp.accepted(alertPath)
	require.Len(t, alerts, 1, "one alert per rollout, rule and action; an unlisted rollout is not judged")

	body := decode(t, alerts[0].body)
	assert.Equal(t, payload.AlertID("ro-1", "format_valid.relative", judge.Pause), body["id"])
	assert.Equal(t, "ro-1", body["rollout_id"])
	assert.Equal(t, "pause", body["action"])
	assert.Equal(t, "format_valid.relative", body["rule"])
	assert.Contains(t, body["reason"], "proven: canary format_valid is below stable by more than 0.01 (difference -0.4")
	ev := body["evidence"].(map[string]any)
	assert.Equal(t, "prompt_canary.check.format_valid", ev["signal"])
	assert.InDelta(t, 0, ev["step"], 0)
	assert.InDelta(t, 50, ev["canary_percent"], 0)
	assert.InDelta(t, 200, ev["canary_samples"], 0, "every sample is in the step")
	assert.InDelta(t, -0.4, ev["estimate"], 1e-12)
	assert.Less(t, ev["bound"], -0.01)
	cohorts := ev["cohorts"].(map[string]any)
	assert.Equal(t, map[string]any{"version": "4", "n": 200.0, "successes": 120.0, "estimate": 0.6, "variance": cohorts["canary"].(map[string]any)["variance"]}, cohorts["canary"])
	assert.Equal(t, "3", cohorts["stable"].(map[string]any)["version"])

	metadatatest.AssertEqualProcessorPromptcanaryVerdicts(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("action", "pause"))},
	}, metricdatatest.IgnoreTimestamp())
}

// TestANonCriticalRuleWaitsForTheStepsSamples: the step started after every sample, so it has
// none of its own; the proven rule is held, and acts once the step has its samples.
func TestANonCriticalRuleWaitsForTheStepsSamples(t *testing.T) {
	cp := newControlPlane(t)
	cp.policies.Store(activeRollout("ro-1", formatPolicy, t0.Add(time.Minute)))
	h := newHarness(t, judgedConfig(cp.URL), nil)
	require.Eventually(t, func() bool { return h.canary.policies.Len() == 1 }, waitFor, tick)

	h.consume(t, formatTraffic("ro-1", 200))
	time.Sleep(10 * judgedConfig(cp.URL).EvaluationInterval)
	assert.Empty(t, cp.accepted(alertPath), "held: the step has 0 of its 50 samples")

	snap, ok := h.canary.tracker.Snapshot("support-reply", "ro-1", t0.Add(time.Minute))
	require.True(t, ok)
	v, err := judge.Sequential{}.EvaluateRollout(judge.Rollout{Snapshot: snap, Target: mustTarget(t, h, "ro-1"), Now: t0.Add(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, []string{"format_valid.relative"}, v.Held)

	// The control plane announces that the step started at t0: the samples are the step's.
	cp.policies.Store(activeRollout("ro-1", formatPolicy, t0))
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	assert.Equal(t, "pause", decode(t, cp.accepted(alertPath)[0].body)["action"])
}

// TestACriticalRuleActsAtOnceWithoutRampState: a policy by prompt (a file without rollouts)
// gives no ramp state; a critical rule still acts as soon as it is proven.
func TestACriticalRuleActsAtOnceWithoutRampState(t *testing.T) {
	cp := newControlPlane(t)
	critical := `{"ramp": {"steps": [50.0, 100.0], "min_duration_seconds": 600.0, "min_samples": 5000},
 "signals": [{"name": "format_valid", "kind": "proportion", "harmful": "decrease", "critical": true}],
 "rules": [{"signal": "format_valid", "type": "absolute", "threshold": 0.9, "action": "rollback"},
           {"id": "format-vs-stable", "signal": "format_valid", "type": "relative", "margin": 0.01, "action": "alert"}]}`
	cp.policies.Store(`{"policies": {"support-reply": ` + critical + `}}`)
	h := newHarness(t, judgedConfig(cp.URL), nil)
	require.Eventually(t, func() bool { return h.canary.policies.Len() == 1 }, waitFor, tick)

	h.consume(t, formatTraffic("ro-7", 200))
	require.Eventually(t, func() bool { return len(cp.accepted(alertPath)) == 1 }, waitFor, tick)
	body := decode(t, cp.accepted(alertPath)[0].body)
	assert.Equal(t, "rollback", body["action"], "rollback outranks alert")
	assert.Equal(t, "format_valid.absolute", body["rule"])
	ev := body["evidence"].(map[string]any)
	assert.NotContains(t, ev, "step", "no ramp state")
	assert.Equal(t, []any{"format_valid.absolute", "format-vs-stable"}, ev["breached"])
	assert.InDelta(t, 0.9, ev["threshold"], 0)
}

func mustTarget(t *testing.T, h *harness, rolloutID string) policy.Target {
	t.Helper()
	target, ok := h.canary.policies.Lookup("support-reply", rolloutID)
	require.True(t, ok)
	return target
}
