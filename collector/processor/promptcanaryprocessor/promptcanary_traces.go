// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"context"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

// Span attributes of the project's contract (see the repository's ARCHITECTURE.md).
const (
	attrPromptName   = "gen_ai.prompt.name"
	attrPromptVer    = "gen_ai.prompt.version"
	attrCohort       = "prompt_canary.cohort"
	attrRolloutID    = "prompt_canary.rollout.id"
	attrInputTokens  = "gen_ai.usage.input_tokens"
	attrOutputTokens = "gen_ai.usage.output_tokens"
	attrModel        = "gen_ai.response.model"

	checkPrefix = "prompt_canary.check."
	scorePrefix = "prompt_canary.score."

	// liveRolloutPrefix makes the rollout id of a call of no rollout: "live:<version>", the
	// stable version that served it. Its reports feed the control plane's drift monitoring.
	liveRolloutPrefix = "live:"
)

// batchCounts accumulates one batch's telemetry, recorded once per batch.
type batchCounts struct {
	inspected int64
	recorded  int64
	overflow  map[tracker.Refusal]int64
}

// observe adds obs to the tracker and counts the outcome.
func (c *batchCounts) observe(t *tracker.Tracker, obs *tracker.Observation) {
	recorded, refusal := t.Observe(obs)
	if recorded {
		c.recorded++
	}
	if refusal != tracker.Accepted {
		if c.overflow == nil {
			c.overflow = make(map[tracker.Refusal]int64, 3)
		}
		c.overflow[refusal]++
	}
}

// processTraces reads every span and returns the batch untouched. It never fails: a canary
// span that cannot be tracked is counted, and a bug in extraction is logged, not raised.
func (p *canaryProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	counts := batchCounts{}
	defer func() {
		if r := recover(); r != nil {
			p.logger.Error("promptcanary processor skipped part of a batch after an internal error; spans pass through unchanged",
				zap.Any("panic", r))
		}
		p.recordBatch(ctx, &counts, p.telemetry.ProcessorPromptcanarySpansInspected, p.telemetry.ProcessorPromptcanarySpansRecorded)
	}()

	var obs tracker.Observation
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			counts.inspected += int64(spans.Len())
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				if !extractRollout(span.Attributes(), &obs) {
					continue
				}
				obs.Time = p.spanTime(span)
				obs.Samples = collectSamples(span.Attributes(), obs.Samples[:0])
				counts.observe(p.tracker, &obs)
			}
		}
	}
	return td, nil
}

// extractRollout fills obs's prompt, version, cohort, rollout and response model from attributes
// that carry the rollout attributes (a canary span, or a late result of a canary call), or the
// prompt attributes of a call of no rollout (cohort stable, a version number): that one counts in
// its version's live report, rollout id "live:<version>". It returns false otherwise (the common
// case, decided by one attribute lookup: spans that name no prompt).
func extractRollout(attrs pcommon.Map, obs *tracker.Observation) bool {
	prompt, ok := attrs.Get(attrPromptName)
	if !ok || prompt.Type() != pcommon.ValueTypeStr || prompt.Str() == "" {
		return false
	}
	cohortValue, ok := attrs.Get(attrCohort)
	if !ok || cohortValue.Type() != pcommon.ValueTypeStr {
		return false
	}
	cohort, ok := tracker.ParseCohort(cohortValue.Str())
	if !ok {
		return false
	}
	version, ok := attrs.Get(attrPromptVer)
	if !ok {
		return false
	}
	obs.Version = versionString(version)
	if rollout, ok := attrs.Get(attrRolloutID); ok && rollout.Type() == pcommon.ValueTypeStr && rollout.Str() != "" {
		obs.RolloutID = rollout.Str()
	} else if cohort == tracker.Stable && isVersionNumber(obs.Version) {
		obs.RolloutID = liveRolloutPrefix + obs.Version
	} else {
		return false
	}
	obs.Prompt = prompt.Str()
	obs.Cohort = cohort
	obs.Model = ""
	if model, ok := attrs.Get(attrModel); ok && model.Type() == pcommon.ValueTypeStr {
		obs.Model = model.Str()
	}
	return true
}

// isVersionNumber reports whether v is a registry version: a number from 1 (an application's
// fallback template is version 0, and serves no version to watch).
func isVersionNumber(v string) bool {
	if v == "" || len(v) > 9 || v == "0" || v[0] == '0' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func versionString(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	default:
		return v.AsString()
	}
}

// collectSamples appends the span's signals to dst, keyed by their attribute: boolean checks,
// numeric scores and token usage. Values of the wrong type, and scores that are not finite or
// exceed stats.MaxMagnitude, are skipped.
func collectSamples(attrs pcommon.Map, dst []tracker.Sample) []tracker.Sample {
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch {
		case strings.HasPrefix(k, checkPrefix):
			if len(k) > len(checkPrefix) && v.Type() == pcommon.ValueTypeBool {
				dst = append(dst, tracker.Sample{Attr: k, Kind: stats.Proportion, Pass: v.Bool()})
			}
		case strings.HasPrefix(k, scorePrefix) && len(k) > len(scorePrefix),
			k == attrInputTokens, k == attrOutputTokens:
			if q, ok := quantize(v); ok {
				dst = append(dst, tracker.Sample{Attr: k, Kind: stats.Mean, Q: q})
			}
		}
		return true
	})
	return dst
}

func quantize(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return stats.Quantize(v.Double())
	case pcommon.ValueTypeInt:
		return stats.Quantize(float64(v.Int()))
	default:
		return 0, false
	}
}
