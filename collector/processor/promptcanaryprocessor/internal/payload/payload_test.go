// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package payload

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// schemaDir is the repository's schemas/ folder.
var schemaDir = filepath.Join("..", "..", "..", "..", "..", "schemas")

var t0 = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

// sampleVerdict is the real judge's verdict on a canary whose format validity dropped.
func sampleVerdict(t *testing.T) (judge.Snapshot, judge.Verdict) {
	t.Helper()
	p, err := policy.ParsePolicy([]byte(`
ramp: {steps: [5, 100], min_duration_seconds: 600, min_samples: 100}
signals: [{name: format_valid, kind: proportion, harmful: decrease}]
rules: [{signal: format_valid, type: relative, margin: 0.01, action: rollback, critical: true}]
`))
	require.NoError(t, err)
	j, err := judge.New(p)
	require.NoError(t, err)
	snap := judge.Snapshot{
		Prompt: "support-reply", RolloutID: "ro-1", StableVersion: "3", CanaryVersion: "4",
		Evidence: judge.Evidence{
			Stable: map[string]*stats.Stat{"prompt_canary.check.format_valid": {Kind: stats.Proportion, N: 9500, Successes: 9405}},
			Canary: map[string]*stats.Stat{"prompt_canary.check.format_valid": {Kind: stats.Proportion, N: 500, Successes: 469}},
		},
		FirstSample: t0, LastSample: t0.Add(250 * time.Second),
	}
	v, err := j.Evaluate(snap.Evidence, &judge.Step{Index: 0, ElapsedSeconds: 250})
	require.NoError(t, err)
	require.Equal(t, judge.DecisionBreach, v.Decision)
	return snap, v
}

func sampleAlert(t *testing.T) Alert {
	snap, v := sampleVerdict(t)
	return NewAlert("gateway-0", snap, v, t0.Add(251*time.Second))
}

func sampleReport() Report {
	check := stats.New(stats.Proportion)
	check.AddOutcome(true)
	score := stats.New(stats.Mean)
	score.AddValue(700000)
	r := tracker.Report{Prompt: "support-reply", RolloutID: "ro-1", Versions: [2]string{"3", "4"}}
	r.Windows[tracker.Stable] = map[string]map[int64]*stats.Stat{"prompt_canary.check.format_valid": {t0.Unix(): check}}
	r.Windows[tracker.Canary] = map[string]map[int64]*stats.Stat{"prompt_canary.score.judge": {t0.Unix() + 60: score}}
	return NewReport("gateway-0", r, 60, t0.Add(2*time.Minute))
}

func TestAlertIDIsStableAndDistinguishesRuleAndAction(t *testing.T) {
	id := AlertID("ro-1", "format_valid.relative", judge.Rollback)
	// Python: "pca_" + sha256(b"4:ro-1,21:format_valid.relative,8:rollback,").hexdigest()[:32]
	assert.Equal(t, "pca_cfe21f0c3347e25472c28cfb85738b98", id)
	assert.Equal(t, id, AlertID("ro-1", "format_valid.relative", judge.Rollback))
	assert.NotEqual(t, id, AlertID("ro-1", "format_valid.relative", judge.Pause))
	assert.NotEqual(t, id, AlertID("ro-1", "format_valid.absolute", judge.Rollback))
	assert.NotEqual(t, id, AlertID("ro-2", "format_valid.relative", judge.Rollback))
	assert.NotEqual(t, AlertID("a\x00b", "c", judge.Alert), AlertID("a", "b\x00c", judge.Alert), "fields are separated")
}

// TestAlertJSON pins an alert; its numbers and reason are the Python engine's for the same
// evidence.
func TestAlertJSON(t *testing.T) {
	b, err := json.Marshal(sampleAlert(t))
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"id": "`+AlertID("ro-1", "format_valid.relative", judge.Rollback)+`",
		"type": "prompt_canary.alert",
		"source": "gateway-0",
		"prompt": "support-reply",
		"rollout_id": "ro-1",
		"action": "rollback",
		"rule": "format_valid.relative",
		"reason": "proven: canary format_valid is below stable by more than 0.01 (difference -0.052, upper bound -0.0245, limit -0.01)",
		"evidence": {
			"signal": "prompt_canary.check.format_valid",
			"kind": "proportion",
			"rule_type": "relative",
			"harmful": "decrease",
			"critical": true,
			"cohorts": {
				"canary": {"version": "4", "n": 500, "successes": 469, "estimate": 0.938, "variance": 0.05892107999569723},
				"stable": {"version": "3", "n": 9500, "successes": 9405, "estimate": 0.99, "variance": 0.009950539388377637}
			},
			"estimate": -0.052000000000000046,
			"limit": -0.01,
			"margin": 0.01,
			"variance": 0.00011888958519017105,
			"radius": 0.02749942564440845,
			"bound": -0.024500574355591595,
			"statistic": 6.721798704871768,
			"statistic_threshold": 2.995732273553991,
			"alpha": 0.05,
			"breached": ["format_valid.relative"],
			"held": [],
			"step": 0,
			"canary_percent": 5,
			"elapsed_seconds": 250,
			"stable_samples": 9500,
			"canary_samples": 500,
			"window_start": "2026-11-27T04:00:00.000Z",
			"window_end": "2026-11-27T04:04:10.000Z"
		},
		"created_at": "2026-11-27T04:04:11.000Z"
	}`, string(b))

	bare := NewAlert("g", judge.Snapshot{RolloutID: "r"}, judge.Verdict{Decision: judge.DecisionBreach, RuleID: "x", Action: judge.Alert, Step: -1}, t0)
	assert.Equal(t, "rule x is in breach", bare.Reason)
	assert.Equal(t, map[string]any{"breached": []string{}, "held": []string{}, "stable_samples": int64(0), "canary_samples": int64(0)}, bare.Evidence)
}

func TestReportJSON(t *testing.T) {
	rep := sampleReport()
	assert.Regexp(t, `^pcr_[0-9a-f]{32}$`, rep.ID)
	assert.NotEqual(t, rep.ID, sampleReport().ID)
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"id": "`+rep.ID+`",
		"type": "prompt_canary.report",
		"source": "gateway-0",
		"origin": "collector",
		"prompt": "support-reply",
		"rollout_id": "ro-1",
		"window_seconds": 60,
		"versions": {"stable": "3", "canary": "4"},
		"stable": {"prompt_canary.check.format_valid": {"1795752000": {"kind": "proportion", "n": 1, "successes": 1}}},
		"canary": {"prompt_canary.score.judge": {"1795752060": {"kind": "mean", "n": 1, "sum": "700000", "sum_sq": "490000000000"}}},
		"window_start": "2026-11-27T04:00:00.000Z",
		"window_end": "2026-11-27T04:02:00.000Z",
		"created_at": "2026-11-27T04:02:00.000Z"
	}`, string(b))
}

func sampleLiveReport() Report {
	check := stats.New(stats.Proportion)
	check.AddOutcome(true)
	r := tracker.Report{Prompt: "support-reply", RolloutID: "live:3", Versions: [2]string{"3", ""}}
	r.Windows[tracker.Stable] = map[string]map[int64]*stats.Stat{"prompt_canary.check.format_valid": {t0.Unix(): check}}
	r.Models[tracker.Stable] = map[string]map[int64]int64{"gpt-4o-2024-08-06": {t0.Unix(): 1}}
	return NewReport("gateway-0", r, 60, t0.Add(time.Minute))
}

func TestALiveReportNamesItsResponseModels(t *testing.T) {
	b, err := json.Marshal(sampleLiveReport())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "live:3", got["rollout_id"])
	assert.Equal(t, map[string]any{"stable": map[string]any{"gpt-4o-2024-08-06": map[string]any{"1795752000": 1.0}}}, got["response_models"])
	assert.NotContains(t, string(mustJSON(t, sampleReport())), "response_models", "left out when no span named a model")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestPayloadsFollowTheirSchemas checks the top level of each payload against the committed
// JSON Schema: every required property present, no property the schema does not declare, the
// id pattern, and every value a property's enum lists (a report's origin).
func TestPayloadsFollowTheirSchemas(t *testing.T) {
	tests := []struct {
		schema  string
		payload any
	}{
		{schema: "collector-alert.schema.json", payload: sampleAlert(t)},
		{schema: "report.schema.json", payload: sampleReport()},
		{schema: "report.schema.json", payload: sampleLiveReport()},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(schemaDir, tt.schema))
			require.NoError(t, err)
			var schema struct {
				Required   []string                  `json:"required"`
				Properties map[string]map[string]any `json:"properties"`
			}
			require.NoError(t, json.Unmarshal(raw, &schema))

			b, err := json.Marshal(tt.payload)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(b, &got))

			for _, k := range schema.Required {
				assert.Contains(t, got, k, "required by %s", tt.schema)
			}
			var keys []string
			for k := range got {
				keys = append(keys, k)
				assert.Contains(t, schema.Properties, k, "not declared in %s", tt.schema)
			}
			sort.Strings(keys)
			pattern, _ := schema.Properties["id"]["pattern"].(string)
			assert.Regexp(t, regexp.MustCompile(pattern), got["id"])
			for k, value := range got {
				if enum, ok := schema.Properties[k]["enum"].([]any); ok {
					assert.Contains(t, enum, value, "%s of %s", k, tt.schema)
				}
			}
		})
	}
}

// TestAlertEvidenceFollowsTheSchemaConventions checks the conventional evidence properties of
// collector-alert.schema.json that an alert carries: their JSON types, and the kind's values.
func TestAlertEvidenceFollowsTheSchemaConventions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(schemaDir, "collector-alert.schema.json"))
	require.NoError(t, err)
	var schema struct {
		Properties struct {
			Evidence struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"evidence"`
		} `json:"properties"`
		Defs struct {
			CohortEvidence struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"cohortEvidence"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(raw, &schema))

	b, err := json.Marshal(sampleAlert(t))
	require.NoError(t, err)
	var got struct {
		Evidence map[string]any `json:"evidence"`
	}
	require.NoError(t, json.Unmarshal(b, &got))

	checkTypes := func(where string, props map[string]map[string]any, values map[string]any) {
		for name, prop := range props {
			value, ok := values[name]
			if !ok {
				continue
			}
			switch prop["type"] {
			case "number":
				assert.IsType(t, 0.0, value, "%s.%s", where, name)
			case "integer":
				f, isNumber := value.(float64)
				assert.True(t, isNumber && f == float64(int64(f)), "%s.%s is an integer", where, name)
			case "string":
				assert.IsType(t, "", value, "%s.%s", where, name)
			case "object":
				assert.IsType(t, map[string]any{}, value, "%s.%s", where, name)
			}
			if enum, ok := prop["enum"].([]any); ok {
				assert.Contains(t, enum, value, "%s.%s", where, name)
			}
		}
	}
	checkTypes("evidence", schema.Properties.Evidence.Properties, got.Evidence)
	for _, c := range []string{"canary", "stable"} {
		cohort := got.Evidence["cohorts"].(map[string]any)[c].(map[string]any)
		checkTypes("evidence.cohorts."+c, schema.Defs.CohortEvidence.Properties, cohort)
	}
}
