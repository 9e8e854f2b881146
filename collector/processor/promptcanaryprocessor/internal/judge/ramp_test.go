// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// perStepPolicy holds its first step 4 hours, its second a minute and until 400 samples per
// cohort, and its last by the ramp's minimums; the judge signal must have data.
const perStepPolicy = `
ramp:
  min_duration_seconds: 600
  min_samples: 100
  steps: [{percent: 10, min_duration: 4h}, {percent: 50, min_duration: 60, min_samples: 400}, 100]
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
  - {name: judge, kind: mean, harmful: decrease, must_have_data: true}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback, critical: true}
`

// healthy is evidence with n valid responses per cohort (none for a cohort with 0), each
// judged.
func healthy(stableN, canaryN int64) Evidence {
	cohort := func(n int64) map[string]*stats.Stat {
		if n == 0 {
			return map[string]*stats.Stat{}
		}
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = 0.5 + 0.2*float64(i%2)
		}
		return map[string]*stats.Stat{"prompt_canary.check.json_valid": proportion(n, n), "prompt_canary.score.judge": mean(scores...)}
	}
	return Evidence{Stable: cohort(stableN), Canary: cohort(canaryN)}
}

func TestEachStepIsReadyByItsOwnMinimums(t *testing.T) {
	j := mustJudge(t, perStepPolicy)
	evaluate := func(step int, elapsed float64, e Evidence) Verdict {
		t.Helper()
		v, err := j.Evaluate(e, &Step{Index: step, ElapsedSeconds: elapsed})
		require.NoError(t, err)
		return v
	}
	judgeShort := func(n, minimum int64, cohorts ...string) []string {
		var out []string
		for _, c := range cohorts {
			out = append(out, fmt.Sprintf("signal 'judge' has %d of the %d %s samples it must have (must_have_data)", n, minimum, c))
		}
		return out
	}

	// Step 0: the ramp's 100 samples, but 4 hours of its own.
	v := evaluate(0, 3600, healthy(900, 100))
	assert.Equal(t, []string{"the step has run 3600 s of its 14400 s minimum"}, v.WaitingFor)
	assert.True(t, evaluate(0, 14400, healthy(900, 100)).Ready)

	// Step 1: a minute of its own, and 400 samples of its own, must_have_data signals too.
	v = evaluate(1, 120, healthy(300, 300))
	assert.Equal(t, append([]string{
		"the canary cohort has 300 of the 400 samples the step needs",
		"the stable cohort has 300 of the 400 samples the step needs",
	}, judgeShort(300, 400, "canary", "stable")...), v.WaitingFor)
	assert.True(t, evaluate(1, 60, healthy(400, 400)).Ready, "ready after its own minute, not the ramp's 600 s")

	// Step 2 (100%): the ramp's 600 s and 100 samples, the stable cohort exempt.
	v = evaluate(2, 599, healthy(0, 100))
	assert.Equal(t, []string{"the step has run 599 s of its 600 s minimum"}, v.WaitingFor)
	assert.True(t, evaluate(2, 600, healthy(0, 100)).Ready)

	// Without a known step, must_have_data counts against the ramp's minimum.
	v, err := j.Evaluate(healthy(50, 50), nil)
	require.NoError(t, err)
	assert.Equal(t, append([]string{"the rollout's ramp step is unknown: the policy came without rollout state"},
		judgeShort(50, 100, "canary", "stable")...), v.WaitingFor)
}
