// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// The shared judge vectors (tests/vectors/README.md): each file is one rollout replayed tick by
// tick, with the verdict the Python judge returned after every tick. This test replays every
// one of them and must agree decision for decision, numbers within the vector's tolerance.

type vector struct {
	Format      int             `json:"format"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Tolerance   float64         `json:"tolerance"`
	Policy      json.RawMessage `json:"policy"`
	Ticks       []vectorTick    `json:"ticks"`
}

type vectorTick struct {
	Step           int                    `json:"step"`
	ElapsedSeconds float64                `json:"elapsed_seconds"`
	Stable         map[string]*stats.Stat `json:"stable"`
	Canary         map[string]*stats.Stat `json:"canary"`
	Expect         vectorExpect           `json:"expect"`
}

type vectorExpect struct {
	Decision      Decision     `json:"decision"`
	Action        *Action      `json:"action"`
	RuleID        *string      `json:"rule_id"`
	Breached      []string     `json:"breached"`
	Held          []string     `json:"held"`
	Ready         bool         `json:"ready"`
	StableSamples int64        `json:"stable_samples"`
	CanarySamples int64        `json:"canary_samples"`
	Rules         []vectorRule `json:"rules"`
}

type vectorRule struct {
	RuleID    string   `json:"rule_id"`
	Status    Status   `json:"status"`
	Estimate  *float64 `json:"estimate"`
	Variance  *float64 `json:"variance"`
	Radius    *float64 `json:"radius"`
	Bound     *float64 `json:"bound"`
	Statistic *float64 `json:"statistic"`
}

// vectorsDir is the repository's tests/vectors, found from this file's location so that the
// test does not depend on the working directory.
func vectorsDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok, "cannot locate the test file")
	// internal/judge -> internal -> promptcanaryprocessor -> processor -> collector -> repository
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "tests", "vectors")
}

// vectorFiles lists every vector; a missing or empty folder fails the test, never skips it.
func vectorFiles(t *testing.T) []string {
	t.Helper()
	dir := vectorsDir(t)
	info, err := os.Stat(dir)
	require.NoError(t, err, "the shared vectors folder %s is missing", dir)
	require.True(t, info.IsDir(), "%s is not a folder", dir)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no *.json vector in %s", dir)
	return files
}

func loadVector(t *testing.T, path string) vector {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v vector
	require.NoError(t, dec.Decode(&v), "%s", path)
	require.Equal(t, 1, v.Format, "%s: unknown vector format", path)
	require.NotEmpty(t, v.Ticks, "%s has no ticks", path)
	require.Positive(t, v.Tolerance, "%s has no tolerance", path)
	return v
}

// addInto merges an increment into running totals, cloning so that totals never alias the
// increments of a tick.
func addInto(totals map[string]*stats.Stat, increments map[string]*stats.Stat) {
	for attr, inc := range increments {
		if cur, ok := totals[attr]; ok {
			cur.Merge(inc)
		} else {
			totals[attr] = inc.Clone()
		}
	}
}

func cloneEvidence(e Evidence) Evidence {
	out := Evidence{Stable: map[string]*stats.Stat{}, Canary: map[string]*stats.Stat{}}
	addInto(out.Stable, e.Stable)
	addInto(out.Canary, e.Canary)
	return out
}

func TestSharedVectors(t *testing.T) {
	files := vectorFiles(t)
	for _, path := range files {
		v := loadVector(t, path)
		t.Run(v.Name, func(t *testing.T) {
			p, err := policy.ParsePolicy(v.Policy)
			require.NoError(t, err, "the Go policy parser must accept the vector's policy")
			j, err := New(p)
			require.NoError(t, err)

			evidence := Evidence{Stable: map[string]*stats.Stat{}, Canary: map[string]*stats.Stat{}}
			var stepEvidence Evidence
			for i, tick := range v.Ticks {
				if i == 0 || tick.Step != v.Ticks[i-1].Step {
					stepEvidence = Evidence{Stable: map[string]*stats.Stat{}, Canary: map[string]*stats.Stat{}}
				}
				addInto(evidence.Stable, tick.Stable)
				addInto(evidence.Canary, tick.Canary)
				addInto(stepEvidence.Stable, tick.Stable)
				addInto(stepEvidence.Canary, tick.Canary)

				// The judge owns what it is given: hand it copies, so that a judge that
				// changed its input could not hide behind the next tick's totals.
				stepCopy := cloneEvidence(stepEvidence)
				got, err := j.Evaluate(cloneEvidence(evidence), &Step{Index: tick.Step, ElapsedSeconds: tick.ElapsedSeconds, Evidence: &stepCopy})
				require.NoError(t, err, "tick %d", i)
				compareTick(t, fmt.Sprintf("%s tick %d", v.Name, i), v.Tolerance, tick.Expect, got)
			}
		})
	}
}

func compareTick(t *testing.T, where string, tolerance float64, want vectorExpect, got Verdict) {
	t.Helper()
	require.Equal(t, want.Decision, got.Decision, "%s: decision", where)
	wantAction, wantRule := Action(""), ""
	if want.Action != nil {
		wantAction = *want.Action
	}
	if want.RuleID != nil {
		wantRule = *want.RuleID
	}
	require.Equal(t, wantAction, got.Action, "%s: action", where)
	require.Equal(t, wantRule, got.RuleID, "%s: rule_id", where)
	require.Equal(t, want.Breached, got.Breached, "%s: breached", where)
	require.Equal(t, want.Held, got.Held, "%s: held", where)
	require.Equal(t, want.Ready, got.Ready, "%s: ready (waiting for %q)", where, got.WaitingFor)
	require.Equal(t, want.StableSamples, got.StableSamples, "%s: stable_samples", where)
	require.Equal(t, want.CanarySamples, got.CanarySamples, "%s: canary_samples", where)
	require.Len(t, got.Rules, len(want.Rules), "%s: rules", where)
	for k, wr := range want.Rules {
		gr := got.Rules[k]
		rw := fmt.Sprintf("%s rule %s", where, wr.RuleID)
		require.Equal(t, wr.RuleID, gr.RuleID, "%s: rule order", rw)
		require.Equal(t, wr.Status, gr.Status, "%s: status (%s)", rw, gr.Summary)
		for _, f := range []struct {
			name      string
			want, got *float64
		}{
			{"estimate", wr.Estimate, gr.Estimate},
			{"variance", wr.Variance, gr.Variance},
			{"radius", wr.Radius, gr.Radius},
			{"bound", wr.Bound, gr.Bound},
			{"statistic", wr.Statistic, gr.Statistic},
		} {
			if f.want == nil {
				assert.Nil(t, f.got, "%s: %s must be null", rw, f.name)
				continue
			}
			if !assert.NotNil(t, f.got, "%s: %s must be a number", rw, f.name) {
				continue
			}
			allowed := tolerance * math.Max(1, math.Abs(*f.want))
			assert.LessOrEqual(t, math.Abs(*f.got-*f.want), allowed, "%s: %s = %v, want %v", rw, f.name, *f.got, *f.want)
		}
	}
}
