// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

func TestParsePolicyFillsInTheDefaults(t *testing.T) {
	p, err := ParsePolicy([]byte(`
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: tokens, kind: mean, harmful: increase, critical: true, must_have_data: yes}
rules:
  - {signal: json_valid, type: relative, action: rollback}
  - {id: tokens-ceiling, signal: tokens, type: absolute, threshold: 800, action: alert}
`))
	require.NoError(t, err)
	assert.InDelta(t, 0.05, p.Alpha, 0)
	assert.Equal(t, []float64{1, 5, 20, 50, 100}, p.Ramp.Steps)
	assert.InDelta(t, 600, p.Ramp.MinDurationSeconds, 0)
	assert.Equal(t, int64(100), p.Ramp.MinSamples)
	assert.Equal(t, Statistics{TargetSamples: 500, WarmupSamples: 30}, p.Statistics)

	assert.Equal(t, "prompt_canary.check.json_valid", p.Signals[0].Attribute())
	assert.Equal(t, "prompt_canary.score.tokens", p.Signals[1].Attribute())
	assert.Equal(t, stats.Mean, p.Signals[1].Kind)
	assert.True(t, p.Signals[1].MustHaveData, "yes is a boolean, as in the Python engine")

	assert.Equal(t, "json_valid.relative", p.Rules[0].ID, "id defaults to <signal>.<type>")
	require.NotNil(t, p.Rules[0].Margin, "a relative rule's margin defaults to 0")
	assert.Zero(t, *p.Rules[0].Margin)
	assert.Nil(t, p.Rules[0].Threshold)
	assert.Equal(t, "tokens-ceiling", p.Rules[1].ID)
	assert.InDelta(t, 800, *p.Rules[1].Threshold, 0)
	assert.Nil(t, p.Rules[1].Margin)

	assert.False(t, p.IsCritical(&p.Rules[0]))
	assert.True(t, p.IsCritical(&p.Rules[1]), "a rule on a critical signal is critical")
	assert.InDelta(t, 0.025, p.RuleAlpha(), 0)
	_, err = p.Signal("nope")
	require.Error(t, err)
	assert.Equal(t, Automatic, p.Promotion, "promotion defaults to automatic")

	p, err = ParsePolicy([]byte("promotion: manual\nsignals: [{name: a, kind: mean, harmful: decrease}]\nrules: [{signal: a, type: relative, action: pause}]"))
	require.NoError(t, err)
	assert.Equal(t, Manual, p.Promotion)

	// An evaluation gate is the control plane's business at rollout start: read and ignored here.
	p, err = ParsePolicy([]byte("gate: {dataset: support-golden, min_pass_rate: 0.9, max_regression: 0.05}\nsignals: [{name: a, kind: mean, harmful: decrease}]\nrules: [{signal: a, type: relative, action: pause}]"))
	require.NoError(t, err)
	assert.Len(t, p.Rules, 1)
}

func TestParsePolicyReadsJSONAndLaxScalars(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"alpha": "0.01", "ramp": {"steps": [50, 100.0], "min_samples": "7", "min_duration_seconds": 0},
		"signals": [{"name": "a", "kind": "proportion", "harmful": "decrease", "critical": 1}],
		"rules": [{"signal": "a", "type": "absolute", "threshold": 0.9, "action": "pause", "critical": "false"}],
		"statistics": {"target_samples": 100.0, "warmup_samples": true}}`))
	require.ErrorContains(t, err, "statistics.warmup_samples: Input should be greater than or equal to 2", "true is 1")
	assert.Nil(t, p)

	p, err = ParsePolicy([]byte(`{signals: [{name: a, kind: mean, harmful: decrease}], rules: [{signal: a, type: relative, action: alert}]}`))
	require.NoError(t, err, "a YAML flow mapping is not JSON but is a policy")
	assert.Equal(t, Alert, p.Rules[0].Action)

	p, err = ParsePolicy([]byte(`{"alpha": "0.01", "ramp": {"steps": [50, 100.0], "min_samples": "7"},
		"signals": [{"name": "a", "kind": "proportion", "harmful": "decrease", "critical": 1}],
		"rules": [{"signal": "a", "type": "absolute", "threshold": 0.9, "action": "pause", "critical": "false"}],
		"statistics": {"target_samples": 100.0}}`))
	require.NoError(t, err)
	assert.InDelta(t, 0.01, p.Alpha, 0)
	assert.Equal(t, int64(7), p.Ramp.MinSamples)
	assert.True(t, p.Signals[0].Critical)
	assert.False(t, p.Rules[0].Critical)
	assert.Equal(t, int64(100), p.Statistics.TargetSamples)
}

// TestParsePolicyRefusesWhatPythonRefuses compares with the messages of the Python engine's
// load_policy for the same documents.
func TestParsePolicyRefusesWhatPythonRefuses(t *testing.T) {
	const a = "signals: [{name: a, kind: mean, harmful: decrease}]\n"
	tests := []struct{ name, doc, want string }{
		{"unknown signal", "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\nrules: [{signal: judge, type: relative, action: pause}]",
			"invalid policy: rule 'judge.relative' names unknown signal 'judge'; the signals are: 'json_valid'; signal 'json_valid' is judged by no rule and is not must_have_data: add a rule on it or remove it"},
		{"threshold outside", "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\nrules: [{signal: json_valid, type: absolute, threshold: 1.2, action: pause}]",
			"invalid policy: rule 'json_valid.absolute' on proportion signal 'json_valid': threshold 1.2 is outside [0, 1]"},
		{"relative with threshold", "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\nrules: [{signal: json_valid, type: relative, threshold: 0.5, action: pause}]",
			"invalid policy: rules.0: rule 'json_valid.relative': a relative rule takes 'margin' (how much worse than stable is tolerated), not 'threshold'"},
		{"typo", "signals: [{name: json_valid, kind: proportion, harmfull: decrease}]\nrules: [{signal: json_valid, type: relative, action: pause}]",
			"invalid policy: signals.0.harmful: Field required; signals.0.harmfull: unknown field"},
		{"absolute without threshold", a + "rules: [{signal: a, type: absolute, action: pause}]",
			"invalid policy: rules.0: rule 'a.absolute': an absolute rule needs a 'threshold'"},
		{"absolute with margin", a + "rules: [{signal: a, type: absolute, threshold: 1, margin: 0.1, action: pause}]",
			"invalid policy: rules.0: rule 'a.absolute': an absolute rule takes 'threshold', not 'margin' (use type: relative to compare with stable traffic)"},
		{"relative threshold null", a + "rules: [{signal: a, type: relative, threshold: null, action: pause}]",
			"invalid policy: rules.0: rule 'a.relative': a relative rule needs a 'margin' (0 or more)"},
		{"no signals", "signals: []\nrules: []", "invalid policy: a policy needs at least one signal: without signals there is nothing to judge"},
		{"no rules", a + "rules: []", "invalid policy: a policy needs at least one rule: without rules nothing can breach"},
		{"duplicates", "signals: [{name: a, kind: mean, harmful: decrease}, {name: a, kind: mean, harmful: increase}, {name: b, kind: proportion, harmful: increase}]\nrules: [{signal: a, type: relative, action: pause}, {signal: a, type: relative, action: alert}, {signal: b, type: absolute, threshold: 1, action: alert}]",
			"invalid policy: signal 'a' is declared twice; signal names are unique; rule id 'a.relative' is used twice; give the rules distinct 'id' values; rule 'b.absolute' on proportion signal 'b': a proportion can never be proven above 1; lower the threshold"},
		{"unjudged", "signals: [{name: a, kind: mean, harmful: decrease}, {name: b, kind: mean, harmful: decrease}]\nrules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: signal 'b' is judged by no rule and is not must_have_data: add a rule on it or remove it"},
		{"margin too big", "signals: [{name: a, kind: proportion, harmful: decrease}]\nrules: [{signal: a, type: relative, margin: 1, action: pause}]",
			"invalid policy: rule 'a.relative' on proportion signal 'a': margin 1.0 can never be exceeded; a proportion margin is in [0, 1)"},
		{"decrease at 0", "signals: [{name: a, kind: proportion, harmful: decrease}]\nrules: [{signal: a, type: absolute, threshold: 0, action: pause}]",
			"invalid policy: rule 'a.absolute' on proportion signal 'a': a proportion can never be proven below 0; raise the threshold"},
		{"bad steps", "ramp: {steps: [5, 1, 100]}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.steps: ramp steps must be strictly increasing, got [5.0, 1.0, 100.0]"},
		{"last step", "ramp: {steps: [5, 50]}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.steps: the last ramp step must be 100, got 50.0"},
		{"step range", "ramp: {steps: [0, 100]}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.steps: every ramp step must be in (0, 100], got 0.0"},
		{"fine step", "ramp: {steps: [0.001, 100]}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.steps: ramp step 0.001% is finer than 0.01%"},
		{"empty steps", "ramp: {steps: []}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.steps: Tuple should have at least 1 item after validation, not 0"},
		{"enums", "signals: [{name: A, kind: median, harmful: down}]\nrules: [{signal: A, type: sideways, action: explode, id: '-x'}]",
			"invalid policy: signals.0.name: invalid signal name 'A': a check or score name is 1-64 characters from a-z, 0-9 and '_'; signals.0.kind: Input should be 'proportion' or 'mean'; signals.0.harmful: Input should be 'decrease' or 'increase'; rules.0.id: invalid rule id '-x': use 1-128 characters from letters, digits, '_', '.' and '-', starting with a letter or digit; rules.0.type: Input should be 'absolute' or 'relative'; rules.0.action: Input should be 'rollback', 'pause' or 'alert'"},
		{"bounds", "alpha: 0.7\nramp: {min_duration_seconds: -1, min_samples: 0}\nstatistics: {target_samples: 0, warmup_samples: 1}\n" + a + "rules: [{signal: a, type: relative, margin: -0.1, action: pause}]",
			"invalid policy: alpha: Input should be less than or equal to 0.5; ramp.min_duration_seconds: Input should be greater than or equal to 0; ramp.min_samples: Input should be greater than or equal to 1; rules.0.margin: Input should be greater than or equal to 0; statistics.target_samples: Input should be greater than or equal to 1; statistics.warmup_samples: Input should be greater than or equal to 2"},
		{"missing", "signals: [{kind: mean}]\nrules: [{}]",
			"invalid policy: signals.0.name: Field required; signals.0.harmful: Field required; rules.0.signal: Field required; rules.0.type: Field required; rules.0.action: Field required"},
		{"list", "[1, 2]", "invalid policy: expected a mapping with 'signals' and 'rules', got list"},
		{"extra top", a + "rules: [{signal: a, type: relative, action: pause}]\nfoo: 1", "invalid policy: foo: unknown field"},
		{"counts beyond int64", "ramp: {min_samples: 9223372036854775808}\nstatistics: {target_samples: -99999999999999999999, warmup_samples: \"9223372036854775808\"}\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: ramp.min_samples: Input should be less than or equal to 9223372036854775807; statistics.target_samples: Input should be greater than or equal to 1; statistics.warmup_samples: Input should be less than or equal to 9223372036854775807"},
		{"promotion", "promotion: later\n" + a + "rules: [{signal: a, type: relative, action: pause}]",
			"invalid policy: promotion: Input should be 'automatic' or 'manual'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tt.doc))
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestParsePolicyRefusesMistypedFields(t *testing.T) {
	_, err := ParsePolicy([]byte("alpha: x\nramp: 3\nsignals: [{name: a, kind: mean, harmful: decrease, critical: maybe}]\n" +
		"rules: [{signal: a, type: relative, action: pause, margin: .inf}]\nstatistics: {target_samples: 1.5}"))
	require.Error(t, err)
	for _, want := range []string{
		"alpha: Input should be a valid number",
		"ramp: Input should be a valid dictionary or instance of Ramp",
		"signals.0.critical: Input should be a valid boolean",
		"rules.0.margin: Input should be a finite number",
		"statistics.target_samples: Input should be a valid integer",
	} {
		assert.ErrorContains(t, err, want)
	}
	_, err = ParsePolicy([]byte("signals: a\nrules: {}\n"))
	require.EqualError(t, err, "invalid policy: signals: Input should be a valid tuple; rules: Input should be a valid tuple")
	_, err = ParsePolicy([]byte("signals: [{name: 3, kind: mean, harmful: decrease}]\nrules: [{signal: a, type: relative, action: pause, id: 5}]\n"))
	require.EqualError(t, err, "invalid policy: signals.0.name: Input should be a valid string; rules.0.id: Input should be a valid string")
	_, err = ParsePolicy([]byte("{"))
	require.ErrorContains(t, err, "not valid YAML or JSON")
}

func TestLaxScalars(t *testing.T) {
	for _, v := range []any{"1", "TRUE", "yes", "on", 1, 1.0, true} {
		b, ok := toBool(v)
		assert.True(t, ok && b, "%v", v)
	}
	for _, v := range []any{2, " yes", "2", 0.5, nil} {
		_, ok := toBool(v)
		assert.False(t, ok, "%v", v)
	}
	for v, want := range map[any]int64{"7": 7, " 7 ": 7, "7.0": 7, "1_000": 1000, "+7": 7, 7.0: 7, true: 1} {
		n, ok := toInt(v)
		assert.True(t, ok, "%v", v)
		assert.Equal(t, want, n, "%v", v)
	}
	for _, v := range []any{7.5, "0x10", 1e20, nil, "x"} {
		_, ok := toInt(v)
		assert.False(t, ok, "%v", v)
	}
	for v, want := range map[any]float64{" 0.05 ": 0.05, "1e3": 1000, ".5": 0.5, "+1": 1, "1_0.5": 10.5, false: 0} {
		f, ok := toFloat(v)
		assert.True(t, ok, "%v", v)
		assert.InDelta(t, want, f, 0, "%v", v)
	}
	_, ok := toFloat("0x1p-2")
	assert.False(t, ok, "hexadecimal floats are Go's, not Python's")
}

func TestPythonRepr(t *testing.T) {
	for f, want := range map[float64]string{1: "1.0", 0.05: "0.05", 1e-7: "1e-07", 1.5e-5: "1.5e-05", 1e16: "1e+16", 123.25: "123.25", -2: "-2.0"} {
		assert.Equal(t, want, pyRepr(f))
	}
	assert.Equal(t, `"it's"`, pyQuote("it's"))
}
