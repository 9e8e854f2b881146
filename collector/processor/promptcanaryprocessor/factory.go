// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadata"
)

// NewFactory returns the promptcanary processor factory. A promptcanary component named in a
// traces and a logs pipeline is one processor (see shared.go).
func NewFactory() processor.Factory {
	f := newSharedProcessors(judge.Sequential{})
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(f.createTraces, metadata.TracesStability),
		processor.WithLogs(f.createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	controlPlane := confighttp.NewDefaultClientConfig()
	controlPlane.Timeout = 5 * time.Second

	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	retry.Multiplier = 2
	retry.MaxInterval = 30 * time.Second
	retry.MaxElapsedTime = 10 * time.Minute

	return &Config{
		ControlPlane: controlPlane,
		Webhook: WebhookConfig{
			QueueSize:      1000,
			RetryOnFailure: retry,
		},
		Policy: PolicyConfig{
			Source:          PolicySourceControlPlane,
			RefreshInterval: 30 * time.Second,
		},
		Limits: LimitsConfig{
			MaxRollouts:         1000,
			MaxSignalsPerCohort: 64,
			MaxPendingWindows:   16,
			MaxStepWindows:      16,
			IdleTimeout:         24 * time.Hour,
		},
		ReportInterval:     time.Minute,
		ReportWindow:       time.Minute,
		EvaluationInterval: 10 * time.Second,
		Timestamp:          TimestampSpanEnd,
	}
}

// newTracesProcessor wires a new canaryProcessor with evaluator j into the processor helper; it
// also returns the canaryProcessor, for tests.
func newTracesProcessor(
	ctx context.Context,
	set processor.Settings,
	cfg *Config,
	next consumer.Traces,
	j judge.Evaluator,
) (processor.Traces, *canaryProcessor, error) {
	return newSharedProcessors(j).traces(ctx, set, cfg, next)
}
