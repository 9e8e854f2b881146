// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package payload // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/payload"

import (
	"math"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// AlertEvidence is the alert's "evidence" object: what the verdict rests on, with the field
// names of the Python engine's RuleVerdict and Verdict where they exist.
//
//   - of the deciding rule: "signal" (its span attribute), "kind", "rule_type", "harmful",
//     "critical", "cohorts" ({"canary": {...}, "stable": {...}}, each with "version", "n",
//     "successes" for a proportion, "estimate" and "variance"), "estimate" (the contrast),
//     "limit", "threshold" (absolute rule) or "margin" (relative rule), "variance", "radius",
//     "bound", "statistic", "statistic_threshold" and "alpha";
//   - of the verdict: "breached" and "held" (rule ids), "step", "canary_percent" and
//     "elapsed_seconds" (when the ramp state is known), "stable_samples" and "canary_samples"
//     (of the current step), "step_evidence_partial" (when the step's samples undercount);
//   - of the snapshot: "window_start" and "window_end", the times of its first and last samples.
//
// Only finite numbers are written, so the object is always valid JSON.
func AlertEvidence(s judge.Snapshot, v judge.Verdict) map[string]any {
	ev := map[string]any{
		"breached":       nonNilStrings(v.Breached),
		"held":           nonNilStrings(v.Held),
		"stable_samples": v.StableSamples,
		"canary_samples": v.CanarySamples,
	}
	if v.Step >= 0 {
		ev["step"] = v.Step
		putFloat(ev, "canary_percent", v.CanaryPercent)
		putFloat(ev, "elapsed_seconds", v.ElapsedSeconds)
	}
	if s.StepEvidencePartial {
		ev["step_evidence_partial"] = true
	}
	if !s.FirstSample.IsZero() {
		ev["window_start"] = Timestamp(s.FirstSample)
		ev["window_end"] = Timestamp(s.LastSample)
	}
	rv := v.Deciding()
	if rv == nil {
		return ev
	}
	ev["signal"] = rv.Attribute
	ev["kind"] = string(rv.Kind)
	ev["rule_type"] = string(rv.Type)
	ev["harmful"] = string(rv.Harmful)
	ev["critical"] = rv.Critical
	putFloat(ev, "limit", rv.Limit)
	if rv.Type == policy.Absolute {
		putFloatPtr(ev, "threshold", rv.Threshold)
	} else {
		putFloatPtr(ev, "margin", rv.Margin)
	}
	putFloatPtr(ev, "estimate", rv.Estimate)
	putFloatPtr(ev, "variance", rv.Variance)
	putFloatPtr(ev, "radius", rv.Radius)
	putFloatPtr(ev, "bound", rv.Bound)
	putFloatPtr(ev, "statistic", rv.Statistic)
	putFloat(ev, "statistic_threshold", rv.StatisticThreshold)
	putFloat(ev, "alpha", rv.Alpha)

	cohorts := map[string]any{
		"canary": cohortEvidence(s.CanaryVersion, rv.Canary, s.Evidence.Canary[rv.Attribute]),
	}
	if rv.Stable != nil {
		cohorts["stable"] = cohortEvidence(s.StableVersion, *rv.Stable, s.Evidence.Stable[rv.Attribute])
	}
	ev["cohorts"] = cohorts
	return ev
}

func cohortEvidence(version string, e judge.CohortEvidence, st *stats.Stat) map[string]any {
	out := map[string]any{"n": e.N}
	if version != "" {
		out["version"] = version
	}
	if st != nil && st.Kind == stats.Proportion {
		out["successes"] = st.Successes
	}
	putFloatPtr(out, "estimate", e.Estimate)
	putFloatPtr(out, "variance", e.Variance)
	return out
}

func putFloat(m map[string]any, key string, f float64) {
	if !math.IsNaN(f) && !math.IsInf(f, 0) {
		m[key] = f
	}
}

func putFloatPtr(m map[string]any, key string, f *float64) {
	if f != nil {
		putFloat(m, key, *f)
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
