// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package payload

import (
	"encoding/json"
	"math/big"
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
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// schemaDir is the repository's schemas/ folder.
var schemaDir = filepath.Join("..", "..", "..", "..", "..", "schemas")

var t0 = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

func sampleAlert() Alert {
	snap := judge.Snapshot{Prompt: "support-reply", RolloutID: "ro-1"}
	v := judge.Verdict{Rule: "format_valid.relative", Action: judge.Rollback, Reason: "worse", Evidence: map[string]any{"bound": -0.02}}
	return NewAlert("gateway-0", snap, v, t0)
}

func sampleReport() Report {
	check := stats.New(stats.Proportion)
	check.AddOutcome(true)
	score := stats.New(stats.Mean)
	var scratch big.Int
	score.AddValue(700000, &scratch)
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

func TestAlertJSON(t *testing.T) {
	b, err := json.Marshal(sampleAlert())
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"id": "`+AlertID("ro-1", "format_valid.relative", judge.Rollback)+`",
		"type": "prompt_canary.alert",
		"source": "gateway-0",
		"prompt": "support-reply",
		"rollout_id": "ro-1",
		"action": "rollback",
		"rule": "format_valid.relative",
		"reason": "worse",
		"evidence": {"bound": -0.02},
		"created_at": "2026-11-27T04:00:00.000Z"
	}`, string(b))

	empty := NewAlert("g", judge.Snapshot{}, judge.Verdict{Rule: "r", Action: judge.Alert}, t0)
	assert.NotNil(t, empty.Evidence, "evidence is always an object")
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

// TestPayloadsFollowTheirSchemas checks the top level of each payload against the committed
// JSON Schema: every required property present, no property the schema does not declare, and
// the id pattern.
func TestPayloadsFollowTheirSchemas(t *testing.T) {
	tests := []struct {
		schema  string
		payload any
	}{
		{schema: "collector-alert.schema.json", payload: sampleAlert()},
		{schema: "report.schema.json", payload: sampleReport()},
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
		})
	}
}
