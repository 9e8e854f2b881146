// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The policy's JSON Schema (schemas/policy.schema.json, exported by the Python engine) is the
// contract between the engines. These tests fail when it gains, loses or changes a field, an
// enum value, a default or a pattern that the Go parser does not follow.

type schemaObject struct {
	Properties map[string]struct {
		Default any    `json:"default"`
		Pattern string `json:"pattern"`
		Ref     string `json:"$ref"`
		Items   struct {
			Ref string `json:"$ref"`
		} `json:"items"`
	} `json:"properties"`
	Required []string `json:"required"`
	Enum     []string `json:"enum"`
}

type policySchema struct {
	schemaObject
	Defs map[string]schemaObject `json:"$defs"`
}

func loadSchema(t *testing.T) policySchema {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	// internal/policy -> internal -> promptcanaryprocessor -> processor -> collector -> repository
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "schemas", "policy.schema.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err, "the policy schema is the contract; it must be there")
	var s policySchema
	require.NoError(t, json.Unmarshal(data, &s))
	return s
}

// minimal returns a valid policy document with only the required fields, and where each
// object of the schema sits in it.
func minimal() (map[string]any, map[string]func(map[string]any) map[string]any) {
	doc := map[string]any{
		"signals": []any{map[string]any{"name": "a", "kind": "mean", "harmful": "decrease"}},
		"rules":   []any{map[string]any{"signal": "a", "type": "relative", "action": "pause"}},
	}
	at := map[string]func(map[string]any) map[string]any{
		"":       func(d map[string]any) map[string]any { return d },
		"Signal": func(d map[string]any) map[string]any { return d["signals"].([]any)[0].(map[string]any) },
		"Rule":   func(d map[string]any) map[string]any { return d["rules"].([]any)[0].(map[string]any) },
		"Ramp":   func(d map[string]any) map[string]any { d["ramp"] = map[string]any{}; return d["ramp"].(map[string]any) },
		"RampStep": func(d map[string]any) map[string]any {
			step := map[string]any{"percent": 100}
			d["ramp"] = map[string]any{"steps": []any{step}}
			return step
		},
		"Statistics": func(d map[string]any) map[string]any {
			d["statistics"] = map[string]any{}
			return d["statistics"].(map[string]any)
		},
	}
	return doc, at
}

func TestTheParserKnowsEveryFieldOfTheSchema(t *testing.T) {
	s := loadSchema(t)
	objects := map[string]schemaObject{"": s.schemaObject}
	for _, name := range []string{"Signal", "Rule", "Ramp", "RampStep", "Statistics"} {
		require.Contains(t, s.Defs, name)
		objects[name] = s.Defs[name]
	}
	for name, obj := range objects {
		for field, prop := range obj.Properties {
			if prop.Default == nil {
				continue
			}
			doc, at := minimal()
			at[name](doc)[field] = prop.Default
			_, err := FromValue(doc)
			require.NoError(t, err, "%s.%s with its schema default %v", name, field, prop.Default)
		}
		doc, at := minimal()
		at[name](doc)["not_in_the_schema"] = 1
		_, err := FromValue(doc)
		require.ErrorContains(t, err, "not_in_the_schema: unknown field", name)
		var known []string
		for field := range obj.Properties {
			known = append(known, field)
		}
		sort.Strings(known)
		assert.Equal(t, knownFields[name], known, "the fields of %q", name)
	}
}

// knownFields are the fields the parser reads, by schema object.
var knownFields = map[string][]string{
	"":           {"alpha", "gate", "promotion", "ramp", "rules", "signals", "statistics"},
	"Signal":     {"critical", "harmful", "kind", "must_have_data", "name"},
	"Rule":       {"action", "critical", "id", "margin", "ratio", "signal", "threshold", "type"},
	"Ramp":       {"min_duration_seconds", "min_samples", "steps"},
	"RampStep":   {"min_duration", "min_samples", "percent"},
	"Statistics": {"target_samples", "warmup_samples"},
}

func TestRequiredFieldsAreRequired(t *testing.T) {
	s := loadSchema(t)
	for name, obj := range map[string]schemaObject{"": s.schemaObject, "Signal": s.Defs["Signal"], "Rule": s.Defs["Rule"], "RampStep": s.Defs["RampStep"]} {
		for _, field := range obj.Required {
			doc, at := minimal()
			delete(at[name](doc), field)
			_, err := FromValue(doc)
			require.ErrorContains(t, err, field+": Field required", "%s.%s", name, field)
		}
	}
}

func TestDefaultsAndPatternsMatchTheSchema(t *testing.T) {
	s := loadSchema(t)
	doc, _ := minimal()
	p, err := FromValue(doc)
	require.NoError(t, err)

	assert.InDelta(t, s.Properties["alpha"].Default, p.Alpha, 0)
	ramp := s.Defs["Ramp"].Properties
	var steps []float64
	for _, x := range ramp["steps"].Default.([]any) {
		steps = append(steps, x.(float64))
	}
	assert.Equal(t, steps, p.Ramp.Steps)
	assert.InDelta(t, ramp["min_duration_seconds"].Default, p.Ramp.MinDurationSeconds, 0)
	assert.InDelta(t, ramp["min_samples"].Default, float64(p.Ramp.MinSamples), 0)
	st := s.Defs["Statistics"].Properties
	assert.InDelta(t, st["target_samples"].Default, float64(p.Statistics.TargetSamples), 0)
	assert.InDelta(t, st["warmup_samples"].Default, float64(p.Statistics.WarmupSamples), 0)
	assert.Equal(t, s.Defs["Signal"].Properties["critical"].Default, p.Signals[0].Critical)
	assert.Equal(t, s.Defs["Signal"].Properties["must_have_data"].Default, p.Signals[0].MustHaveData)
	assert.Equal(t, s.Defs["Rule"].Properties["critical"].Default, p.Rules[0].Critical)
	assert.Equal(t, s.Properties["promotion"].Default, string(p.Promotion))

	assert.Equal(t, s.Defs["Rule"].Properties["id"].Pattern, ruleIDPattern.String())
	assert.Equal(t, s.Defs["Signal"].Properties["name"].Pattern, signalNamePattern.String())
}

func TestEnumsMatchTheSchema(t *testing.T) {
	s := loadSchema(t)
	accepted := map[string][]string{
		"SignalKind": {"proportion", "mean"},
		"Direction":  {string(Decrease), string(Increase)},
		"RuleType":   {string(Absolute), string(Relative)},
		"RuleAction": {string(Rollback), string(Pause), string(Alert)},
		"Promotion":  {string(Automatic), string(Manual)},
	}
	for name, values := range accepted {
		assert.ElementsMatch(t, s.Defs[name].Enum, values, name)
	}
	for _, a := range s.Defs["RuleAction"].Enum {
		assert.True(t, Action(a).Valid(), a)
	}
	assert.True(t, strings.HasPrefix(s.Defs["Rule"].Properties["action"].Ref, "#/$defs/RuleAction"))
}
