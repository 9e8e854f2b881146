// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"fmt"
	"strings"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// decidabilityProblems lists everything that keeps a well-formed policy from being decided, in
// document order, with the Python engine's wording.
func decidabilityProblems(p *Policy) []string {
	if len(p.Signals) == 0 {
		return []string{"a policy needs at least one signal: without signals there is nothing to judge"}
	}
	if len(p.Rules) == 0 {
		return []string{"a policy needs at least one rule: without rules nothing can breach"}
	}
	var out []string
	byName := map[string]*Signal{}
	var names []string
	for i := range p.Signals {
		s := &p.Signals[i]
		if _, dup := byName[s.Name]; dup {
			out = append(out, fmt.Sprintf("signal %s is declared twice; signal names are unique", pyQuote(s.Name)))
			continue
		}
		byName[s.Name] = s
		names = append(names, pyQuote(s.Name))
	}
	seen := map[string]bool{}
	judged := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if seen[r.ID] {
			out = append(out, fmt.Sprintf("rule id %s is used twice; give the rules distinct 'id' values", pyQuote(r.ID)))
		}
		seen[r.ID] = true
		judged[r.Signal] = true
		s, ok := byName[r.Signal]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("rule %s names unknown signal %s; the signals are: %s",
				pyQuote(r.ID), pyQuote(r.Signal), strings.Join(names, ", ")))
		case s.Kind == stats.Proportion:
			if msg := proportionRuleProblem(r, s); msg != "" {
				out = append(out, msg)
			}
		case r.Ratio != nil && s.Harmful == Decrease:
			out = append(out, fmt.Sprintf("rule %s compares rates (ratio) on score %s, which is harmful when it decreases: a ratio rule needs a score that counts bad events per call (harmful: increase)", pyQuote(r.ID), pyQuote(s.Name)))
		}
	}
	for i := range p.Signals {
		s := &p.Signals[i]
		if !judged[s.Name] && !s.MustHaveData {
			out = append(out, fmt.Sprintf("signal %s is judged by no rule and is not must_have_data: add a rule on it or remove it", pyQuote(s.Name)))
		}
	}
	return out
}

// proportionRuleProblem refuses limits a proportion can never be proven past.
func proportionRuleProblem(r *Rule, s *Signal) string {
	where := fmt.Sprintf("rule %s on proportion signal %s", pyQuote(r.ID), pyQuote(s.Name))
	if r.Type == Relative {
		if r.Tolerance() >= 1 {
			return fmt.Sprintf("%s: margin %s can never be exceeded; a proportion margin is in [0, 1)", where, pyRepr(r.Tolerance()))
		}
		return ""
	}
	threshold := *r.Threshold
	switch {
	case !(threshold >= 0 && threshold <= 1):
		return fmt.Sprintf("%s: threshold %s is outside [0, 1]", where, pyRepr(threshold))
	case s.Harmful == Decrease && threshold == 0:
		return where + ": a proportion can never be proven below 0; raise the threshold"
	case s.Harmful == Increase && threshold == 1:
		return where + ": a proportion can never be proven above 1; lower the threshold"
	}
	return ""
}
