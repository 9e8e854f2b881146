// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// defaultPolicy is the Python engine's DEFAULT_POLICY_YAML.
const defaultPolicy = `
alpha: 0.05
ramp: {steps: [1, 5, 20, 50, 100], min_duration_seconds: 600, min_samples: 100}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: refusal, kind: proportion, harmful: decrease}
  - {name: judge, kind: mean, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
  - {signal: refusal, type: relative, margin: 0.01, action: rollback, critical: true}
  - {signal: judge, type: relative, margin: 0.05, action: pause}
statistics: {target_samples: 500, warmup_samples: 30}
`

func mustJudge(t *testing.T, doc string) *Judge {
	t.Helper()
	p, err := policy.ParsePolicy([]byte(doc))
	require.NoError(t, err)
	j, err := New(p)
	require.NoError(t, err)
	return j
}

func proportion(n, successes int64) *stats.Stat {
	return &stats.Stat{Kind: stats.Proportion, N: n, Successes: successes}
}

func mean(values ...float64) *stats.Stat {
	s := stats.New(stats.Mean)
	for _, x := range values {
		q, ok := stats.Quantize(x)
		if !ok {
			panic(x)
		}
		s.AddValue(q)
	}
	return s
}

// TestTheDocumentedExample replays the example of docs/judge.md ("The evidence in a
// verdict"), whose numbers the Python engine printed.
func TestTheDocumentedExample(t *testing.T) {
	j := mustJudge(t, defaultPolicy)
	v, err := j.Evaluate(Evidence{
		Stable: map[string]*stats.Stat{"prompt_canary.check.json_valid": proportion(9500, 9405)},
		Canary: map[string]*stats.Stat{"prompt_canary.check.json_valid": proportion(500, 469)},
	}, &Step{Index: 1, ElapsedSeconds: 250})
	require.NoError(t, err)

	assert.Equal(t, DecisionBreach, v.Decision)
	assert.Equal(t, Rollback, v.Action)
	assert.Equal(t, "json_valid.relative", v.RuleID)
	assert.Equal(t, []string{"json_valid.relative"}, v.Breached)
	assert.Equal(t, []string{}, v.Held)
	assert.False(t, v.Ready)
	assert.Equal(t, []string{"the step has run 250 s of its 600 s minimum", "rule 'json_valid.relative' is in breach"}, v.WaitingFor)
	assert.Equal(t, 1, v.Step)
	assert.InDelta(t, 5.0, v.CanaryPercent, 0)
	assert.Equal(t, int64(9500), v.StableSamples)
	assert.Equal(t, int64(500), v.CanarySamples)

	require.Len(t, v.Rules, 3)
	r := v.Rules[0]
	assert.Equal(t, StatusBreach, r.Status)
	assert.True(t, r.Critical)
	assert.Equal(t, "prompt_canary.check.json_valid", r.Attribute)
	assert.InDelta(t, 0.938, *r.Canary.Estimate, 1e-15)
	assert.InDelta(t, 0.05892107999569723, *r.Canary.Variance, 1e-15)
	assert.InDelta(t, 0.009950539388377637, *r.Stable.Variance, 1e-15)
	assert.InDelta(t, -0.052000000000000046, *r.Estimate, 1e-15)
	assert.InDelta(t, -0.01, r.Limit, 0)
	assert.InDelta(t, 0.00011888958519017105, *r.Variance, 1e-18)
	assert.InDelta(t, 0.03209814706082888, *r.Radius, 1e-15)
	assert.InDelta(t, -0.01990185293917117, *r.Bound, 1e-15)
	assert.InDelta(t, 6.99889026778512, *r.Statistic, 1e-12)
	assert.InDelta(t, 4.0943445622221, r.StatisticThreshold, 1e-12)
	assert.InDelta(t, 0.016666666666666666, r.Alpha, 0)
	assert.Equal(t, "proven: canary json_valid is below stable by more than 0.01 (difference -0.052, upper bound -0.0199, limit -0.01)", r.Summary)

	for _, r := range v.Rules[1:] {
		assert.Equal(t, StatusInsufficientData, r.Status)
		assert.Nil(t, r.Estimate)
		assert.Nil(t, r.Bound)
		assert.Nil(t, r.Canary.Estimate)
		assert.Equal(t, "waiting for data: canary has 0 of the 30 samples needed; stable has 0 of the 30 samples needed", r.Summary)
	}
	assert.Equal(t, "json_valid.relative", v.Deciding().RuleID)
}

// TestAHeldAbsoluteRuleOnAMean matches the Python engine's verdict: a proven non-critical rule
// waits for the step's minimum duration; at 100% the stable cohort is exempt. A tiny rollout's
// test is tuned for a tiny target.
func TestAHeldAbsoluteRuleOnAMean(t *testing.T) {
	j := mustJudge(t, `
signals: [{name: tokens, kind: mean, harmful: increase}]
rules: [{signal: tokens, type: absolute, threshold: 400, action: alert}]
statistics: {warmup_samples: 2, target_samples: 10}
ramp: {steps: [50, 100], min_duration_seconds: 0.5, min_samples: 3}
`)
	evidence := Evidence{Canary: map[string]*stats.Stat{"prompt_canary.score.tokens": mean(500, 520, 480, 510)}}
	v, err := j.Evaluate(evidence, &Step{Index: 1, ElapsedSeconds: 0.25})
	require.NoError(t, err)
	assert.Equal(t, DecisionContinue, v.Decision)
	assert.Equal(t, []string{"tokens.absolute"}, v.Held)
	assert.Equal(t, []string{
		"the step has run 0.25 s of its 0.5 s minimum",
		"rule 'tokens.absolute' is proven and acts once the step reaches its minimums",
	}, v.WaitingFor)
	r := v.Rules[0]
	assert.Nil(t, r.Stable)
	assert.InDelta(t, 291.6666666666667, *r.Canary.Variance, 1e-12)
	assert.InDelta(t, 72.91666666666667, *r.Variance, 1e-12)
	assert.InDelta(t, 23.043258868632662, *r.Radius, 1e-12)
	assert.InDelta(t, 479.4567411313673, *r.Bound, 1e-12)
	assert.InDelta(t, 24.43509187573387, *r.Statistic, 1e-12)
	assert.Equal(t, "proven, acting once the step reaches its minimum duration and samples: canary tokens is above 400 (estimate 502.5, lower bound 479.5, limit 400)", r.Summary)

	v, err = j.Evaluate(evidence, &Step{Index: 1, ElapsedSeconds: 0.5})
	require.NoError(t, err)
	assert.Equal(t, DecisionBreach, v.Decision, "the step is mature: the rule acts")
	assert.Equal(t, Alert, v.Action)
}

// TestRatioRulesMatchThePythonEngine replays tests/analysis/test_judge.py's count-data case:
// refusals per call (the check's failures) and tool errors per call (a score).
func TestRatioRulesMatchThePythonEngine(t *testing.T) {
	j := mustJudge(t, `
signals:
  - {name: refusal, kind: proportion, harmful: decrease}
  - {name: tool_errors, kind: mean, harmful: increase}
rules:
  - {signal: refusal, type: relative, ratio: 2, action: rollback, critical: true}
  - {signal: tool_errors, type: relative, ratio: 1.5, action: pause, critical: true}
`)
	values := func(zeros, ones int) *stats.Stat {
		s := stats.New(stats.Mean)
		for i := 0; i < zeros+ones; i++ {
			if i < zeros {
				s.AddValue(0)
			} else {
				s.AddValue(stats.Scale)
			}
		}
		return s
	}
	v, err := j.Evaluate(Evidence{
		Stable: map[string]*stats.Stat{"prompt_canary.check.refusal": proportion(8000, 7920), "prompt_canary.score.tool_errors": values(1600, 400)},
		Canary: map[string]*stats.Stat{"prompt_canary.check.refusal": proportion(800, 760), "prompt_canary.score.tool_errors": values(160, 40)},
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, DecisionBreach, v.Decision)
	assert.Equal(t, Rollback, v.Action)
	refusals, errors := v.Rules[0], v.Rules[1]
	assert.Equal(t, StatusBreach, refusals.Status)
	assert.InDelta(t, 0.0, refusals.Limit, 0)
	assert.InDelta(t, 2.0, *refusals.Ratio, 0)
	assert.InDelta(t, 0.030000000000000027, *refusals.Estimate, 1e-15)
	assert.InDelta(t, 6.498663482461031e-05, *refusals.Variance, 1e-18)
	assert.InDelta(t, 0.005657172264369317, *refusals.Bound, 1e-12)
	assert.InDelta(t, 6.396385878122651, *refusals.Statistic, 1e-10)
	assert.Equal(t, "proven: canary refusal failures per call are above 2 times stable's (excess +0.03, lower bound +0.005657, limit 0)", refusals.Summary)
	assert.Equal(t, StatusContinue, errors.Status)
	assert.InDelta(t, -0.2035109831599148, *errors.Bound, 1e-12)
	assert.Equal(t, "not proven: canary tool_errors per call is above 1.5 times stable's (excess -0.1, lower bound -0.2035, limit 0)", errors.Summary)
}

func TestSeverityThenPolicyOrderDecides(t *testing.T) {
	j := mustJudge(t, `
ramp: {steps: [100], min_duration_seconds: 0, min_samples: 1}
signals: [{name: a, kind: proportion, harmful: decrease}]
rules:
  - {id: first-alert, signal: a, type: absolute, threshold: 0.9, action: alert}
  - {id: first-pause, signal: a, type: absolute, threshold: 0.8, action: pause}
  - {id: second-pause, signal: a, type: absolute, threshold: 0.7, action: pause}
`)
	v, err := j.Evaluate(Evidence{Canary: map[string]*stats.Stat{"prompt_canary.check.a": proportion(2000, 200)}}, &Step{Index: 0, ElapsedSeconds: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"first-alert", "first-pause", "second-pause"}, v.Breached)
	assert.Equal(t, Pause, v.Action)
	assert.Equal(t, "first-pause", v.RuleID)
}

func TestWithoutRampStateOnlyCriticalRulesAct(t *testing.T) {
	j := mustJudge(t, `
signals:
  - {name: a, kind: proportion, harmful: decrease, critical: true}
  - {name: b, kind: proportion, harmful: decrease}
rules:
  - {signal: a, type: absolute, threshold: 0.9, action: rollback}
  - {signal: b, type: absolute, threshold: 0.9, action: pause}
`)
	bad := proportion(5000, 2500)
	v, err := j.Evaluate(Evidence{Canary: map[string]*stats.Stat{"prompt_canary.check.a": bad, "prompt_canary.check.b": bad}}, nil)
	require.NoError(t, err)
	assert.Equal(t, DecisionBreach, v.Decision)
	assert.Equal(t, []string{"a.absolute"}, v.Breached)
	assert.Equal(t, []string{"b.absolute"}, v.Held)
	assert.Equal(t, -1, v.Step)
	assert.Equal(t, int64(5000), v.CanarySamples, "without a step, the whole evidence counts")
	assert.False(t, v.Ready)
	assert.Contains(t, v.WaitingFor[0], "ramp step is unknown")
}

func TestNoSpreadNoProof(t *testing.T) {
	j := mustJudge(t, `
signals: [{name: s, kind: mean, harmful: decrease}]
rules: [{signal: s, type: relative, action: pause}]
statistics: {warmup_samples: 2}
`)
	same := mean(1, 1, 1, 1)
	v, err := j.Evaluate(Evidence{
		Stable: map[string]*stats.Stat{"prompt_canary.score.s": same},
		Canary: map[string]*stats.Stat{"prompt_canary.score.s": same.Clone()},
	}, &Step{})
	require.NoError(t, err)
	assert.Equal(t, StatusInsufficientData, v.Rules[0].Status)
	assert.Equal(t, "waiting for data: no spread has been observed yet", v.Rules[0].Summary)
}

func TestEvaluateRefusesWhatPythonRefuses(t *testing.T) {
	j := mustJudge(t, defaultPolicy)
	_, err := j.Evaluate(Evidence{}, &Step{Index: 5})
	require.ErrorContains(t, err, "step 5 is outside the policy's ramp of 5 steps (0..4)")
	_, err = j.Evaluate(Evidence{}, &Step{Index: 0, ElapsedSeconds: -1})
	require.ErrorContains(t, err, "elapsed_seconds must be finite and >= 0")
	_, err = j.Evaluate(Evidence{Canary: map[string]*stats.Stat{"prompt_canary.check.json_valid": stats.New(stats.Mean)}}, &Step{})
	require.ErrorContains(t, err, `canary statistics of "prompt_canary.check.json_valid" are of kind "mean"`)
	_, err = New(&policy.Policy{Alpha: 0.05})
	require.Error(t, err)
	_, err = New(&policy.Policy{Alpha: 0.05, Rules: []policy.Rule{{}}, Statistics: policy.Statistics{TargetSamples: 0}})
	require.ErrorContains(t, err, "target_samples must be at least 1")
}

func TestSequentialEvaluatorUsesTheRampState(t *testing.T) {
	p, err := policy.ParsePolicy([]byte(`
ramp: {steps: [10, 100], min_duration_seconds: 60, min_samples: 100}
signals: [{name: a, kind: proportion, harmful: decrease}]
rules: [{signal: a, type: relative, margin: 0.01, action: pause}]
`))
	require.NoError(t, err)
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	snap := Snapshot{
		Evidence: Evidence{
			Stable: map[string]*stats.Stat{"prompt_canary.check.a": proportion(9000, 8910)},
			Canary: map[string]*stats.Stat{"prompt_canary.check.a": proportion(1000, 900)},
		},
		StepEvidence: &Evidence{
			Stable: map[string]*stats.Stat{"prompt_canary.check.a": proportion(900, 891)},
			Canary: map[string]*stats.Stat{"prompt_canary.check.a": proportion(100, 90)},
		},
	}
	ramp := &policy.RampState{Step: 0, StepStartedAt: now.Add(-2 * time.Minute)}
	v, err := Sequential{}.EvaluateRollout(Rollout{Snapshot: snap, Target: policy.Target{Policy: p, Ramp: ramp}, Now: now})
	require.NoError(t, err)
	assert.Equal(t, DecisionBreach, v.Decision, "the step is mature: 120 s and 100 samples per cohort")
	assert.InDelta(t, 120, v.ElapsedSeconds, 0)
	assert.Equal(t, int64(100), v.CanarySamples, "the step's own samples")

	ramp.StepStartedAt = now.Add(time.Minute) // a skewed clock: the step starts ahead
	v, err = Sequential{}.EvaluateRollout(Rollout{Snapshot: snap, Target: policy.Target{Policy: p, Ramp: ramp}, Now: now})
	require.NoError(t, err)
	assert.InDelta(t, 0, v.ElapsedSeconds, 0)
	assert.Equal(t, []string{"a.relative"}, v.Held)

	_, err = Sequential{}.EvaluateRollout(Rollout{Snapshot: snap})
	require.Error(t, err)
}

func TestFuncAdaptsAFunction(t *testing.T) {
	e := Func(func(r Rollout) (Verdict, error) {
		return Verdict{Decision: DecisionBreach, RuleID: r.Snapshot.RolloutID, Action: Pause}, nil
	})
	v, err := e.EvaluateRollout(Rollout{Snapshot: Snapshot{RolloutID: "r"}})
	require.NoError(t, err)
	assert.Equal(t, "r", v.RuleID)
	assert.Nil(t, v.Deciding(), "no rule verdict to point at")
}

func TestVerdictJSON(t *testing.T) {
	j := mustJudge(t, defaultPolicy)
	v, err := j.Evaluate(Evidence{}, &Step{})
	require.NoError(t, err)
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, "continue", back["decision"])
	assert.Equal(t, []any{}, back["breached"])
	rule := back["rules"].([]any)[0].(map[string]any)
	assert.Nil(t, rule["estimate"])
	assert.InDelta(t, 0.01, rule["margin"], 0)
	assert.NotContains(t, rule, "threshold")
}

func TestActionSeverity(t *testing.T) {
	for _, a := range []Action{Rollback, Pause, Alert} {
		assert.True(t, a.Valid(), a)
	}
	assert.Greater(t, Rollback.Severity(), Pause.Severity())
	assert.Greater(t, Pause.Severity(), Alert.Severity())
	assert.False(t, Action("promote").Valid())
	assert.False(t, Action("").Valid())
}
