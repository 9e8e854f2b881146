// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The testdata files are shared with the Python engine: tests/analysis/test_ramp_steps.py reads
// the same files and expects the same seconds, minimums and messages.

func TestAStepSetsItsOwnMinimums(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "ramp_per_step.yaml"))
	require.NoError(t, err)
	p, err := ParsePolicy(data)
	require.NoError(t, err)
	r := &p.Ramp
	assert.Equal(t, []float64{1, 5, 20, 50, 100}, r.Steps)
	var durations []float64
	var samples []int64
	for i := range r.Steps {
		durations = append(durations, r.MinDurationAt(i))
		samples = append(samples, r.MinSamplesAt(i))
	}
	assert.Equal(t, []float64{4 * 3600, 12 * 3600, 24 * 3600, 24 * 3600, 600}, durations)
	assert.Equal(t, []int64{500, 500, 500, 2000, 500}, samples)
}

func TestStepsWithoutMinimumsUseTheRamps(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"ramp": {"steps": [{"percent": 10, "min_duration": null, "min_samples": null}, {"percent": 100}],
		"min_duration_seconds": 60, "min_samples": 7},
		"signals": [{"name": "a", "kind": "mean", "harmful": "decrease"}],
		"rules": [{"signal": "a", "type": "relative", "action": "pause"}]}`))
	require.NoError(t, err, "null is 'not set', as in the Python engine")
	for i := range p.Ramp.Steps {
		assert.InDelta(t, 60, p.Ramp.MinDurationAt(i), 0)
		assert.Equal(t, int64(7), p.Ramp.MinSamplesAt(i))
	}
	hand := Ramp{Steps: []float64{100}, MinDurationSeconds: 5, MinSamples: 3}
	assert.InDelta(t, 5, hand.MinDurationAt(0), 0, "a ramp without StepMinimums uses its own")
	assert.Equal(t, int64(3), hand.MinSamplesAt(0))
}

func TestAStoredPolicyReadsBack(t *testing.T) {
	// What the Python engine stores on a rollout (policy_document): durations in seconds.
	p, err := ParsePolicy([]byte(`{"alpha": 0.05, "ramp": {"steps": [{"percent": 1.0, "min_duration": 14400.0, "min_samples": 500},
		{"percent": 5.0, "min_duration": 43200.0}, 100.0], "min_duration_seconds": 600.0, "min_samples": 100},
		"signals": [{"name": "a", "kind": "mean", "harmful": "decrease", "critical": false, "must_have_data": false}],
		"rules": [{"id": "a.relative", "signal": "a", "type": "relative", "margin": 0.0, "action": "pause", "critical": false}],
		"statistics": {"target_samples": 500, "warmup_samples": 30}}`))
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 5, 100}, p.Ramp.Steps)
	assert.Equal(t, []StepMinimums{{14400, 500}, {43200, 0}, {}}, p.Ramp.StepMinimums)
}

// TestInvalidRampSteps checks each testdata/invalid_*.yaml: the policy is refused with the
// message its first line gives after "# want: ".
func TestInvalidRampSteps(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid_*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			require.True(t, ok, "the first line says what the file must be refused with")
			_, err = ParsePolicy(data)
			require.EqualError(t, err, want)
		})
	}
}

func TestMoreStepProblems(t *testing.T) {
	const rest = "\nsignals: [{name: a, kind: mean, harmful: decrease}]\nrules: [{signal: a, type: relative, action: pause}]\n"
	tests := []struct{ name, ramp, want string }{
		{"every problem of a step", "ramp: {steps: [{min_duration: x, min_samples: 1.5, min_durations: 1}, 100]}",
			"invalid policy: ramp.steps.0.percent: Field required; ramp.steps.0.min_duration: invalid duration 'x': " + durationHelp +
				"; ramp.steps.0.min_samples: Input should be a valid integer; ramp.steps.0.min_durations: unknown field"},
		{"not a number", "ramp: {steps: [{percent: 5, min_duration: [4h]}, 100]}",
			"invalid policy: ramp.steps.0.min_duration: Input should be a valid number"},
		{"too long for a float", "ramp: {steps: [{percent: 5, min_duration: " + strings.Repeat("9", 400) + "y}, 100]}",
			"invalid policy: ramp.steps.0.min_duration: Input should be a finite number"},
		{"percent range", "ramp: {steps: [{percent: 0, min_duration: 4h}, 100]}",
			"invalid policy: ramp.steps: every ramp step must be in (0, 100], got 0.0"},
		{"last step", "ramp: {steps: [{percent: 5}, {percent: 50, min_samples: 10}]}",
			"invalid policy: ramp.steps: the last ramp step must be 100, got 50.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.ramp + rest))
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestDurationsReadAsInPython(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "durations.yaml"))
	require.NoError(t, err)
	var cases []struct {
		Text    string   `yaml:"text"`
		Seconds *float64 `yaml:"seconds"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cases))
	require.NotEmpty(t, cases)
	for _, c := range cases {
		got, ok := parseDuration(c.Text)
		if c.Seconds == nil {
			assert.False(t, ok, "%q is not a duration", c.Text)
			continue
		}
		if assert.True(t, ok, "%q is a duration", c.Text) {
			assert.InDelta(t, *c.Seconds, got, 0, "%q: the same float, not a close one", c.Text)
		}
	}
}

func TestTheDurationPatternIsTheSchemas(t *testing.T) {
	var schema struct {
		Defs map[string]struct {
			Properties map[string]struct {
				AnyOf []struct {
					Type    string `json:"type"`
					Pattern string `json:"pattern"`
				} `json:"anyOf"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "schemas", "policy.schema.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &schema))
	var pattern string
	for _, alt := range schema.Defs["RampStep"].Properties["min_duration"].AnyOf {
		if alt.Type == "string" {
			pattern = alt.Pattern
		}
	}
	assert.Equal(t, durationPattern.String(), pattern)
}
