// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const minimalPolicy = `{"signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
 "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback", "critical": true}]}`

// controlPlaneAnswer is what GET /v1/policies?include=rollouts answers (the Python service's
// PoliciesDocument), with a field the processor does not read.
const controlPlaneAnswer = `{
 "policies": {"support-reply": ` + minimalPolicy + `},
 "rollouts": [{
   "prompt": "support-reply", "rollout_id": "ro-1", "state": "ramping",
   "stable_version": 3, "canary_version": 4, "canary_weight_bp": 500,
   "step": 1, "ramp": [1.0, 5.0, 20.0, 50.0, 100.0],
   "step_started_at": "2026-11-27T04:00:00.250000Z", "started_at": "2026-11-27T03:00:00Z",
   "policy": ` + minimalPolicy + `,
   "something_new": true
 }]
}`

func TestParseDocumentReadsTheControlPlaneAnswer(t *testing.T) {
	set, problems, err := ParseDocument([]byte(controlPlaneAnswer))
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Equal(t, 1, set.Len())

	target, ok := set.Lookup("support-reply", "ro-1")
	require.True(t, ok)
	require.NotNil(t, target.Ramp)
	assert.Equal(t, 1, target.Ramp.Step)
	assert.Equal(t, time.Date(2026, 11, 27, 4, 0, 0, 250_000_000, time.UTC), target.Ramp.StepStartedAt.UTC())
	assert.Equal(t, int64(3), target.Ramp.StableVersion)
	assert.Equal(t, int64(4), target.Ramp.CanaryVersion)
	assert.Equal(t, "ramping", target.Ramp.State)
	assert.Equal(t, "json_valid.relative", target.Policy.Rules[0].ID)

	_, ok = set.Lookup("support-reply", "ro-0")
	assert.False(t, ok, "with a rollouts list, a rollout that is not listed is not active: not judged")
}

func TestParseDocumentWithoutRolloutsJudgesEveryRolloutOfAPrompt(t *testing.T) {
	set, problems, err := ParseDocument([]byte("policies:\n  support-reply:\n    signals: [{name: a, kind: mean, harmful: decrease}]\n    rules: [{signal: a, type: relative, action: pause}]\n"))
	require.NoError(t, err)
	assert.Empty(t, problems)
	target, ok := set.Lookup("support-reply", "any-rollout")
	require.True(t, ok)
	assert.Nil(t, target.Ramp, "no ramp state")
	_, ok = set.Lookup("other", "any-rollout")
	assert.False(t, ok)
}

func TestParseDocumentLeavesOutInvalidEntries(t *testing.T) {
	doc := `{"policies": {"good": ` + minimalPolicy + `, "bad": {"signals": [], "rules": []}, "": ` + minimalPolicy + `},
 "rollouts": [
  {"prompt": "good", "rollout_id": "r1", "step": 0, "step_started_at": "2026-11-27T04:00:00Z", "policy": ` + minimalPolicy + `},
  {"prompt": "good", "rollout_id": "r1", "step": 1, "step_started_at": "2026-11-27T04:00:00Z", "policy": ` + minimalPolicy + `},
  {"prompt": "good", "rollout_id": "r2", "step": 9, "step_started_at": "2026-11-27T04:00:00Z", "policy": ` + minimalPolicy + `},
  {"prompt": "good", "rollout_id": "r3", "step": 0, "step_started_at": "yesterday", "policy": ` + minimalPolicy + `},
  {"prompt": "good", "rollout_id": "r4", "step": -1, "step_started_at": "2026-11-27T04:00:00Z", "policy": ` + minimalPolicy + `},
  {"prompt": "good", "rollout_id": "r5", "step": 0, "step_started_at": "2026-11-27T04:00:00", "policy": {"rules": []}},
  {"prompt": "good", "rollout_id": "r6", "step": 0, "step_started_at": "2026-11-27T04:00:00", "policy": ` + minimalPolicy + `},
  {"rollout_id": "r7"},
  "r8"
 ]}`
	set, problems, err := ParseDocument([]byte(doc))
	require.NoError(t, err)
	var messages []string
	for _, p := range problems {
		messages = append(messages, p.Error())
	}
	want := []string{
		`policy document: a prompt name is empty`,
		`policy of prompt "bad": invalid policy: a policy needs at least one signal: without signals there is nothing to judge`,
		`policy document: rollouts.1: rollout "r1" of prompt "good" is listed twice; the first entry applies`,
		`policy document: rollouts.2: rollout "r2" of prompt "good": step 9 is outside the policy's ramp of 5 steps`,
		`policy document: rollouts.3: rollout "r3" of prompt "good": "step_started_at" must be an RFC 3339 time: parsing time "yesterday"`,
		`policy document: rollouts.4: rollout "r4" of prompt "good": "step" must be an integer, 0 or more`,
		`policy document: rollouts.5: rollout "r5" of prompt "good": invalid policy: signals: Field required`,
		`policy document: rollouts.7: "prompt" and "rollout_id" must be non-empty strings`,
		`policy document: rollouts.8: an active rollout is an object`,
	}
	require.Len(t, messages, len(want), "%q", messages)
	for i := range want {
		assert.True(t, strings.HasPrefix(messages[i], want[i]), "got %q, want %q...", messages[i], want[i])
	}
	target, ok := set.Lookup("good", "r1")
	require.True(t, ok)
	assert.Equal(t, 0, target.Ramp.Step, "the first entry applies")
	target, ok = set.Lookup("good", "r6")
	require.True(t, ok, "a time without offset is UTC")
	assert.Equal(t, time.UTC, target.Ramp.StepStartedAt.Location())
	assert.Equal(t, 2, set.Len())
}

func TestParseDocumentRefusesBadDocuments(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{name: "not yaml", doc: "{", want: "not valid YAML or JSON"},
		{name: "scalar", doc: "42", want: "must be an object"},
		{name: "list", doc: "[{prompt: a}]", want: "must be an object"},
		{name: "no policies", doc: "rules: []", want: `policy document has no "policies"`},
		{name: "policies not a map", doc: "policies: [a]", want: `"policies" must map prompt names`},
		{name: "rollouts not a list", doc: "policies: {}\nrollouts: {a: 1}", want: `"rollouts" must be a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseDocument([]byte(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
	for _, empty := range []string{"", "policies:\n", `{"policies": {}}`} {
		set, problems, err := ParseDocument([]byte(empty))
		require.NoError(t, err, "%q", empty)
		assert.Empty(t, problems)
		assert.Zero(t, set.Len())
	}
}
