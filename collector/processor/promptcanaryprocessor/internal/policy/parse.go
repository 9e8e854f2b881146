// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// DefaultSteps is the default ramp, in percent of traffic routed to the canary at each step.
var DefaultSteps = []float64{1, 5, 20, 50, 100}

// Defaults of the policy document, as in schemas/policy.schema.json.
const (
	// DefaultAlpha is the chance of any false breach over a whole rollout.
	DefaultAlpha = 0.05
	// DefaultMinDurationSeconds is the minimum duration of every step.
	DefaultMinDurationSeconds = 600.0
	// DefaultMinSamples is the minimum number of samples per cohort during every step.
	DefaultMinSamples = 100
	// DefaultTargetSamples is where the confidence bound is tightest.
	DefaultTargetSamples = 500
	// DefaultWarmupSamples is how many samples a compared cohort needs before a rule may breach.
	DefaultWarmupSamples = 30
)

var (
	ruleIDPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	signalNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

// ParsePolicy reads and validates one policy document, YAML or JSON. The error names every
// problem and where it is, as the Python engine's load_policy does.
func ParsePolicy(data []byte) (*Policy, error) {
	v, err := decodeText(data)
	if err != nil {
		return nil, fmt.Errorf("invalid policy: %w", err)
	}
	return FromValue(v)
}

// FromValue validates a policy document already decoded into maps, lists and scalars (as
// encoding/json or YAML produce them), filling in the defaults.
func FromValue(v any) (*Policy, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("invalid policy: expected a mapping with 'signals' and 'rules', got %s", typeName(v))
	}
	var probs problems
	o := &object{m: m, known: map[string]bool{}, probs: &probs}
	p := &Policy{
		Alpha:      DefaultAlpha,
		Ramp:       Ramp{Steps: append([]float64(nil), DefaultSteps...), MinDurationSeconds: DefaultMinDurationSeconds, MinSamples: DefaultMinSamples},
		Statistics: Statistics{TargetSamples: DefaultTargetSamples, WarmupSamples: DefaultWarmupSamples},
		Promotion:  Automatic,
	}
	if alpha, ok := o.number("alpha", false, DefaultAlpha); ok {
		switch {
		case !(alpha > 0):
			probs.add("alpha", "Input should be greater than 0")
		case !(alpha <= 0.5):
			probs.add("alpha", "Input should be less than or equal to 0.5")
		}
		p.Alpha = alpha
	}
	if v, ok := o.get("ramp", false); ok {
		p.Ramp = parseRamp(v, &probs)
	}
	if v, ok := o.get("signals", true); ok {
		p.Signals = parseList(v, "signals", &probs, parseSignal)
	}
	if v, ok := o.get("rules", true); ok {
		p.Rules = parseList(v, "rules", &probs, parseRule)
	}
	if v, ok := o.get("statistics", false); ok {
		p.Statistics = parseStatistics(v, &probs)
	}
	if _, given := o.m["promotion"]; given {
		if promotion, ok := o.choice("promotion", string(Automatic), string(Manual)); ok {
			p.Promotion = Promotion(promotion)
		}
	} else {
		o.known["promotion"] = true
	}
	// The evaluation gate is checked by the control plane when a rollout starts; the processor
	// judges live traffic only, so it accepts the field and reads nothing of it.
	o.known["gate"] = true
	o.finish()
	if probs.count() == 0 {
		for _, msg := range decidabilityProblems(p) {
			probs.add("", msg)
		}
	}
	if probs.count() > 0 {
		return nil, errors.New("invalid policy: " + strings.Join(probs.list, "; "))
	}
	return p, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	default:
		if _, ok := toInt(v); ok {
			return "int"
		}
		return "float"
	}
}

func parseList[T any](v any, loc string, probs *problems, item func(any, string, *problems) T) []T {
	list, ok := v.([]any)
	if !ok {
		probs.add(loc, "Input should be a valid tuple")
		return nil
	}
	out := make([]T, 0, len(list))
	for i, x := range list {
		out = append(out, item(x, join(loc, i), probs))
	}
	return out
}

func parseRamp(v any, probs *problems) Ramp {
	r := Ramp{Steps: append([]float64(nil), DefaultSteps...), MinDurationSeconds: DefaultMinDurationSeconds, MinSamples: DefaultMinSamples}
	o, ok := newObject(v, "ramp", "Ramp", probs)
	if !ok {
		return r
	}
	if raw, ok := o.get("steps", false); ok {
		r.Steps, r.StepMinimums = parseSteps(raw, probs)
	}
	if d, ok := o.number("min_duration_seconds", true, DefaultMinDurationSeconds); ok {
		if !(d >= 0) {
			probs.add("ramp.min_duration_seconds", "Input should be greater than or equal to 0")
		}
		r.MinDurationSeconds = d
	}
	if n, ok := o.integer("min_samples", DefaultMinSamples); ok {
		if n < 1 {
			probs.add("ramp.min_samples", "Input should be greater than or equal to 1")
		}
		r.MinSamples = n
	}
	o.finish()
	return r
}

// parseSteps reads ramp.steps: each step a percentage, or an object with its percent and
// minimums of its own. It returns the percentages and, when a step sets minimums, each step's.
func parseSteps(v any, probs *problems) ([]float64, []StepMinimums) {
	const loc = "ramp.steps"
	list, ok := v.([]any)
	if !ok {
		probs.add(loc, "Input should be a valid tuple")
		return nil, nil
	}
	before := probs.count()
	steps := make([]float64, len(list))
	var own []StepMinimums
	for i, x := range list {
		if _, isObject := x.(map[string]any); !isObject {
			steps[i], _ = numberValue(x, join(loc, i), false, probs)
			continue
		}
		if own == nil {
			own = make([]StepMinimums, len(list))
		}
		steps[i], own[i] = parseRampStep(x, join(loc, i), probs)
	}
	if probs.count() > before {
		return steps, own
	}
	if len(steps) == 0 {
		probs.add(loc, "Tuple should have at least 1 item after validation, not 0")
		return steps, own
	}
	for _, s := range steps {
		if math.IsNaN(s) || math.IsInf(s, 0) || !(s > 0 && s <= 100) {
			probs.add(loc, fmt.Sprintf("every ramp step must be in (0, 100], got %s", pyRepr(s)))
			return steps, own
		}
		if math.Abs(math.RoundToEven(s*100)-s*100) > 1e-6 {
			probs.add(loc, fmt.Sprintf("ramp step %s%% is finer than 0.01%%", pyRepr(s)))
			return steps, own
		}
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] <= steps[i-1] {
			probs.add(loc, fmt.Sprintf("ramp steps must be strictly increasing, got %s", pyList(steps)))
			return steps, own
		}
	}
	if steps[len(steps)-1] != 100 {
		probs.add(loc, fmt.Sprintf("the last ramp step must be 100, got %s", pyRepr(steps[len(steps)-1])))
	}
	return steps, own
}

// parseRampStep reads one step object, {percent, min_duration, min_samples}: the Python
// engine's RampStep. A null or missing minimum is the ramp's.
func parseRampStep(v any, loc string, probs *problems) (float64, StepMinimums) {
	var percent float64
	var own StepMinimums
	o, ok := newObject(v, loc, "RampStep", probs)
	if !ok {
		return percent, own
	}
	if raw, ok := o.get("percent", true); ok {
		percent, _ = numberValue(raw, join(loc, "percent"), false, probs)
	}
	if raw, ok := o.get("min_duration", false); ok && raw != nil {
		own.MinDurationSeconds = stepDuration(raw, join(loc, "min_duration"), probs)
	}
	if raw, ok := o.get("min_samples", false); ok && raw != nil {
		n, valid := toInt(raw)
		switch {
		case !valid && beyondInt64(raw) > 0:
			probs.add(join(loc, "min_samples"), maxIntMessage)
		case !valid && beyondInt64(raw) < 0:
			probs.add(join(loc, "min_samples"), "Input should be greater than or equal to 1")
		case !valid:
			probs.add(join(loc, "min_samples"), "Input should be a valid integer")
		case n < 1:
			probs.add(join(loc, "min_samples"), "Input should be greater than or equal to 1")
		default:
			own.MinSamples = n
		}
	}
	o.finish()
	return percent, own
}

// stepDuration reads a step's min_duration: a duration string (30m, 4h, 1h30m) or a number of
// seconds, finite and longer than 0. It returns 0 after reporting a problem.
func stepDuration(v any, loc string, probs *problems) float64 {
	var seconds float64
	if text, isString := v.(string); isString {
		parsed, ok := parseDuration(text)
		if !ok {
			probs.add(loc, fmt.Sprintf("invalid duration %s: %s", pyQuote(text), durationHelp))
			return 0
		}
		if math.IsInf(parsed, 0) {
			probs.add(loc, "Input should be a finite number")
			return 0
		}
		seconds = parsed
	} else {
		number, ok := numberValue(v, loc, true, probs)
		if !ok {
			return 0
		}
		seconds = number
	}
	if !(seconds > 0) {
		probs.add(loc, "a step's minimum duration must be longer than 0; leave min_duration out for the ramp's min_duration_seconds")
		return 0
	}
	return seconds
}

func parseSignal(v any, loc string, probs *problems) Signal {
	var s Signal
	o, ok := newObject(v, loc, "Signal", probs)
	if !ok {
		return s
	}
	if name, ok := o.str("name", true); ok {
		if !signalNamePattern.MatchString(name) {
			probs.add(join(loc, "name"), fmt.Sprintf("invalid signal name %s: a check or score name is 1-64 characters from a-z, 0-9 and '_'", pyQuote(name)))
		}
		s.Name = name
	}
	if kind, ok := o.choice("kind", string(stats.Proportion), string(stats.Mean)); ok {
		s.Kind = stats.Kind(kind)
	}
	if harmful, ok := o.choice("harmful", string(Decrease), string(Increase)); ok {
		s.Harmful = Direction(harmful)
	}
	s.Critical = o.boolean("critical", false)
	s.MustHaveData = o.boolean("must_have_data", false)
	o.finish()
	return s
}

func parseRule(v any, loc string, probs *problems) Rule {
	var r Rule
	m, isMap := v.(map[string]any)
	if isMap {
		m = ruleDefaults(m)
	}
	o, ok := newObject(m, loc, "Rule", probs)
	if !ok {
		return r
	}
	before := probs.count()
	// A default is not validated: a rule without id, signal or type only reports what is missing.
	if id, ok := o.str("id", false); ok {
		r.ID = id
		if !ruleIDPattern.MatchString(id) {
			probs.add(join(loc, "id"), fmt.Sprintf("invalid rule id %s: use 1-128 characters from letters, digits, '_', '.' and '-', starting with a letter or digit", pyQuote(id)))
		}
	}
	if signal, ok := o.str("signal", true); ok {
		r.Signal = signal
	}
	if t, ok := o.choice("type", string(Absolute), string(Relative)); ok {
		r.Type = RuleType(t)
	}
	r.Threshold, _ = o.optionalNumber("threshold")
	if margin, ok := o.optionalNumber("margin"); ok {
		if margin != nil && !(*margin >= 0) {
			probs.add(join(loc, "margin"), "Input should be greater than or equal to 0")
		}
		r.Margin = margin
	}
	if ratio, ok := o.optionalNumber("ratio"); ok {
		if ratio != nil && !(*ratio >= 1) {
			probs.add(join(loc, "ratio"), "Input should be greater than or equal to 1")
		}
		r.Ratio = ratio
	}
	if action, ok := o.choice("action", string(Rollback), string(Pause), string(Alert)); ok {
		r.Action = Action(action)
	}
	r.Critical = o.boolean("critical", false)
	o.finish()
	if probs.count() == before {
		if msg := limitProblem(&r); msg != "" {
			probs.add(loc, msg)
		}
	}
	return r
}

// ruleDefaults fills in a rule's id ("<signal>.<type>") and the margin (0) of a relative rule
// that gives neither a margin nor a ratio, as the Python engine does before validating the rule.
func ruleDefaults(m map[string]any) map[string]any {
	filled := make(map[string]any, len(m)+2)
	for k, v := range m {
		filled[k] = v
	}
	signal, signalOK := m["signal"].(string)
	ruleType, typeOK := m["type"].(string)
	if !truthy(m["id"]) && signalOK && typeOK {
		filled["id"] = signal + "." + ruleType
	}
	if _, hasThreshold := m["threshold"]; ruleType == string(Relative) && m["margin"] == nil && !hasThreshold && m["ratio"] == nil {
		filled["margin"] = 0.0
	}
	return filled
}

// limitProblem checks that a rule has the limit its type needs.
func limitProblem(r *Rule) string {
	id := pyQuote(r.ID)
	if r.Type == Absolute {
		if r.Margin != nil {
			return fmt.Sprintf("rule %s: an absolute rule takes 'threshold', not 'margin' (use type: relative to compare with stable traffic)", id)
		}
		if r.Threshold == nil {
			return fmt.Sprintf("rule %s: an absolute rule needs a 'threshold'", id)
		}
		if r.Ratio != nil {
			return fmt.Sprintf("rule %s: an absolute rule takes 'threshold', not 'ratio' (use type: relative to compare rates with stable traffic)", id)
		}
		return ""
	}
	if r.Threshold != nil {
		return fmt.Sprintf("rule %s: a relative rule takes 'margin' (how much worse than stable is tolerated), not 'threshold'", id)
	}
	if r.Margin != nil && r.Ratio != nil {
		return fmt.Sprintf("rule %s: a relative rule takes 'margin' (a difference) or 'ratio' (a rate ratio), not both", id)
	}
	if r.Margin == nil && r.Ratio == nil {
		return fmt.Sprintf("rule %s: a relative rule needs a 'margin' (0 or more)", id)
	}
	return ""
}

func parseStatistics(v any, probs *problems) Statistics {
	s := Statistics{TargetSamples: DefaultTargetSamples, WarmupSamples: DefaultWarmupSamples}
	o, ok := newObject(v, "statistics", "Statistics", probs)
	if !ok {
		return s
	}
	if n, ok := o.integer("target_samples", DefaultTargetSamples); ok {
		if n < 1 {
			probs.add("statistics.target_samples", "Input should be greater than or equal to 1")
		}
		s.TargetSamples = n
	}
	if n, ok := o.integer("warmup_samples", DefaultWarmupSamples); ok {
		if n < 2 {
			probs.add("statistics.warmup_samples", "Input should be greater than or equal to 2")
		}
		s.WarmupSamples = n
	}
	o.finish()
	return s
}
