// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNoneReachesNoVerdict(t *testing.T) {
	verdicts, err := New().Evaluate(Policy{Prompt: "p"}, Snapshot{Prompt: "p", RolloutID: "r"})
	require.NoError(t, err)
	assert.Empty(t, verdicts)
}

func TestFuncAdaptsAFunction(t *testing.T) {
	j := Func(func(p Policy, s Snapshot) ([]Verdict, error) {
		return []Verdict{{Rule: p.Prompt + "/" + s.RolloutID, Action: Pause}}, nil
	})
	verdicts, err := j.Evaluate(Policy{Prompt: "p"}, Snapshot{RolloutID: "r"})
	require.NoError(t, err)
	assert.Equal(t, []Verdict{{Rule: "p/r", Action: Pause}}, verdicts)
}

func TestActionValid(t *testing.T) {
	for _, a := range []Action{Rollback, Pause, Alert} {
		assert.True(t, a.Valid(), a)
	}
	assert.False(t, Action("promote").Valid())
	assert.False(t, Action("").Valid())
}
