// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// RampState is where an active rollout stands on its ramp, as the control plane says.
type RampState struct {
	// Step is the index of the current step in the policy's ramp.steps.
	Step int
	// StepStartedAt is when the current step started (the rollout's start or last advance).
	StepStartedAt time.Time
	// StableVersion and CanaryVersion are the prompt versions of the two cohorts (0 if unknown).
	StableVersion int64
	CanaryVersion int64
	// State is "ramping" or "paused" ("" if not given).
	State string
}

// Target is what the judge needs about one rollout: its policy and, when known, its ramp state.
type Target struct {
	Policy *Policy
	// Ramp is nil when the document gives no rollout state (a policy by prompt only).
	Ramp *RampState
}

type rolloutKey struct{ prompt, rollout string }

// Set is one parsed policy document: the policies by prompt and, when the document lists them,
// the active rollouts with their ramp state.
type Set struct {
	prompts  map[string]*Policy
	rollouts map[rolloutKey]Target
	// listed is true when the document carries "rollouts": that list then says which rollouts
	// are active, and only those are judged.
	listed bool
}

// EmptySet is a set without any policy.
func EmptySet() *Set { return &Set{prompts: map[string]*Policy{}, rollouts: map[rolloutKey]Target{}} }

// Lookup returns what judges the rollout rolloutID of prompt. When the document lists the
// active rollouts, only a listed rollout has a target, with its ramp state; otherwise every
// rollout of a prompt with a policy has one, without ramp state.
func (s *Set) Lookup(prompt, rolloutID string) (Target, bool) {
	if s.listed {
		t, ok := s.rollouts[rolloutKey{prompt: prompt, rollout: rolloutID}]
		return t, ok
	}
	p, ok := s.prompts[prompt]
	return Target{Policy: p}, ok
}

// Len returns how many rollouts (when listed) or prompts the set can judge.
func (s *Set) Len() int {
	if s.listed {
		return len(s.rollouts)
	}
	return len(s.prompts)
}

// ParseDocument reads a policies document, YAML or JSON:
//
//	{"policies": {"<prompt>": <policy>, ...},
//	 "rollouts": [{"prompt": "<prompt>", "rollout_id": "<id>", "step": 1,
//	               "step_started_at": "<RFC 3339>", "stable_version": 3, "canary_version": 4,
//	               "policy": <policy>, ...}, ...]}
//
// which is what GET /v1/policies?include=rollouts answers ("rollouts" is optional). Each policy
// follows schemas/policy.schema.json. A document that is not of this shape is an error; an
// entry whose policy or ramp state is invalid is left out and reported in problems, so one bad
// policy does not disable the others. Fields the processor does not need are ignored.
func ParseDocument(data []byte) (set *Set, problems []error, err error) {
	v, err := decodeText(data)
	if err != nil {
		return nil, nil, fmt.Errorf("policy document: %w", err)
	}
	set = EmptySet()
	if v == nil {
		return set, nil, nil
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, nil, errors.New(`policy document must be an object {"policies": {"<prompt>": <policy>, ...}}`)
	}
	byPrompt, present := top["policies"]
	if !present {
		return nil, nil, errors.New(`policy document has no "policies"; the document is {"policies": {"<prompt>": <policy>, ...}}`)
	}
	if byPrompt != nil {
		m, ok := byPrompt.(map[string]any)
		if !ok {
			return nil, nil, errors.New(`policy document: "policies" must map prompt names to policies`)
		}
		for _, prompt := range sortedKeys(m) {
			if prompt == "" {
				problems = append(problems, errors.New("policy document: a prompt name is empty"))
				continue
			}
			p, perr := FromValue(m[prompt])
			if perr != nil {
				problems = append(problems, fmt.Errorf("policy of prompt %q: %w", prompt, perr))
				continue
			}
			set.prompts[prompt] = p
		}
	}
	if raw, ok := top["rollouts"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return nil, nil, errors.New(`policy document: "rollouts" must be a list of active rollouts`)
		}
		set.listed = true
		for i, item := range list {
			key, target, rerr := parseRollout(item)
			if rerr != nil {
				problems = append(problems, fmt.Errorf("policy document: rollouts.%d: %w", i, rerr))
				continue
			}
			if _, dup := set.rollouts[key]; dup {
				problems = append(problems, fmt.Errorf("policy document: rollouts.%d: rollout %q of prompt %q is listed twice; the first entry applies", i, key.rollout, key.prompt))
				continue
			}
			set.rollouts[key] = target
		}
	}
	return set, problems, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseRollout reads one entry of "rollouts".
func parseRollout(v any) (rolloutKey, Target, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return rolloutKey{}, Target{}, errors.New("an active rollout is an object")
	}
	prompt, _ := m["prompt"].(string)
	rolloutID, _ := m["rollout_id"].(string)
	if prompt == "" || rolloutID == "" {
		return rolloutKey{}, Target{}, errors.New(`"prompt" and "rollout_id" must be non-empty strings`)
	}
	key := rolloutKey{prompt: prompt, rollout: rolloutID}
	where := fmt.Sprintf("rollout %q of prompt %q", rolloutID, prompt)
	step, ok := toInt(m["step"])
	if !ok || step < 0 {
		return key, Target{}, fmt.Errorf(`%s: "step" must be an integer, 0 or more`, where)
	}
	startedText, _ := m["step_started_at"].(string)
	started, err := parseTime(startedText)
	if err != nil {
		return key, Target{}, fmt.Errorf(`%s: "step_started_at" must be an RFC 3339 time: %w`, where, err)
	}
	p, err := FromValue(m["policy"])
	if err != nil {
		return key, Target{}, fmt.Errorf("%s: %w", where, err)
	}
	if int(step) >= len(p.Ramp.Steps) {
		return key, Target{}, fmt.Errorf("%s: step %d is outside the policy's ramp of %d steps", where, step, len(p.Ramp.Steps))
	}
	state := &RampState{Step: int(step), StepStartedAt: started}
	state.StableVersion, _ = toInt(m["stable_version"])
	state.CanaryVersion, _ = toInt(m["canary_version"])
	state.State, _ = m["state"].(string)
	return key, Target{Policy: p, Ramp: state}, nil
}

// parseTime reads an RFC 3339 time; a time without offset is taken as UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		return t, nil
	}
	if t, err2 := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err2 == nil {
		return t, nil
	}
	return time.Time{}, err
}
