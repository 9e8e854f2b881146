// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
)

// BenchmarkProcessTraces measures the span path on a batch of 100 canary spans (plus one
// unrelated span), each with a check, a score and token usage.
func BenchmarkProcessTraces(b *testing.B) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(b, tel.Shutdown(context.Background())) }()
	cfg := testConfig("http://127.0.0.1:1")
	_, p, err := newTracesProcessor(context.Background(), metadatatest.NewSettings(tel), cfg, consumertest.NewNop(), judge.Sequential{})
	require.NoError(b, err)
	calls := make([]call, 100)
	for i := range calls {
		cohort := "stable"
		if i%10 == 0 {
			cohort = "canary"
		}
		calls[i] = call{prompt: "support-reply", version: "3", cohort: cohort, rollout: "ro-1", end: t0, attrs: map[string]any{
			"prompt_canary.check.format_valid": i%7 != 0,
			"prompt_canary.score.judge":        0.5 + float64(i)/1000,
			"gen_ai.usage.input_tokens":        int64(900 + i),
			"gen_ai.usage.output_tokens":       int64(200 + i),
		}}
	}
	td := traces(calls...)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.processTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
}
