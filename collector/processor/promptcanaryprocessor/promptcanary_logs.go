// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

// Late results: gen_ai.evaluation.result log records (OpenTelemetry GenAI semantic conventions)
// that the instrumentation emits for an LLM judge score, a moderation outcome or user feedback
// that arrives after the call's span ended.
const (
	evaluationEvent     = "gen_ai.evaluation.result"
	attrEventName       = "event.name" // where SDKs without LogRecord.event_name put it
	attrEvaluationName  = "gen_ai.evaluation.name"
	attrEvaluationValue = "gen_ai.evaluation.score.value"
	attrEvaluationLabel = "gen_ai.evaluation.score.label"
	attrErrorType       = "error.type"

	labelPass = "pass"
	labelFail = "fail"
)

// processLogs reads every log record and returns the batch untouched. It never fails: a late
// result that cannot be tracked is counted, and a bug in extraction is logged, not raised.
func (p *canaryProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	counts := batchCounts{}
	defer func() {
		if r := recover(); r != nil {
			p.logger.Error("promptcanary processor skipped part of a batch after an internal error; log records pass through unchanged",
				zap.Any("panic", r))
		}
		p.recordBatch(ctx, &counts, p.telemetry.ProcessorPromptcanaryLogRecordsInspected, p.telemetry.ProcessorPromptcanaryLogRecordsRecorded)
	}()

	var obs tracker.Observation
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			records := sls.At(j).LogRecords()
			counts.inspected += int64(records.Len())
			for k := 0; k < records.Len(); k++ {
				record := records.At(k)
				if !isEvaluationResult(record) || !extractRollout(record.Attributes(), &obs) {
					continue
				}
				sample, ok := lateSample(record.Attributes())
				if !ok {
					continue
				}
				obs.Time = p.recordTime(record)
				obs.Samples = append(obs.Samples[:0], sample)
				counts.observe(p.tracker, &obs)
			}
		}
	}
	return ld, nil
}

// isEvaluationResult reports whether a log record is a gen_ai.evaluation.result event.
func isEvaluationResult(record plog.LogRecord) bool {
	if record.EventName() == evaluationEvent {
		return true
	}
	name, ok := record.Attributes().Get(attrEventName)
	return ok && name.Type() == pcommon.ValueTypeStr && name.Str() == evaluationEvent
}

// lateSample maps a late result to its signal, as the Python instrumentation writes it:
//
//   - a check outcome carries gen_ai.evaluation.score.label "pass" or "fail" (and the value 1.0
//     or 0.0): it counts into the proportion prompt_canary.check.<gen_ai.evaluation.name>;
//   - any other result with a numeric gen_ai.evaluation.score.value is a score: it counts into
//     the mean prompt_canary.score.<gen_ai.evaluation.name>;
//   - a result with error.type (the evaluation failed), without a name, or without a usable
//     value (not a number, not finite, beyond stats.MaxMagnitude) counts into nothing.
func lateSample(attrs pcommon.Map) (tracker.Sample, bool) {
	name, ok := attrs.Get(attrEvaluationName)
	if !ok || name.Type() != pcommon.ValueTypeStr || name.Str() == "" {
		return tracker.Sample{}, false
	}
	if _, failed := attrs.Get(attrErrorType); failed {
		return tracker.Sample{}, false
	}
	if label, ok := attrs.Get(attrEvaluationLabel); ok && label.Type() == pcommon.ValueTypeStr {
		switch label.Str() {
		case labelPass, labelFail:
			return tracker.Sample{Attr: checkPrefix + name.Str(), Kind: stats.Proportion, Pass: label.Str() == labelPass}, true
		}
	}
	value, ok := attrs.Get(attrEvaluationValue)
	if !ok {
		return tracker.Sample{}, false
	}
	q, ok := quantize(value)
	if !ok {
		return tracker.Sample{}, false
	}
	return tracker.Sample{Attr: scorePrefix + name.Str(), Kind: stats.Mean, Q: q}, true
}

// recordTime places a late result in its rollout's window: the record's timestamp (when the
// result was produced), else its observed timestamp, else the arrival time.
func (p *canaryProcessor) recordTime(record plog.LogRecord) time.Time {
	if p.cfg.Timestamp == TimestampSpanEnd {
		if ts := record.Timestamp(); ts != 0 {
			return ts.AsTime()
		}
		if ts := record.ObservedTimestamp(); ts != 0 {
			return ts.AsTime()
		}
	}
	return p.now()
}
