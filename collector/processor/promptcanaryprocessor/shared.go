// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
)

// sharedProcessors keeps one canaryProcessor per component configuration. The Collector creates
// a processor per pipeline, with the same configuration value for every pipeline that names the
// component (as the memory_limiter relies on): the traces and logs pipelines of one promptcanary
// component then share one tracker, one judge, one delivery queue and one set of reports, so a
// rollout has one set of per-cohort windows whether a sample came from a span or a log record.
//
// The shared processor starts with the first pipeline's Start (later ones are no-ops) and shuts
// down with the last pipeline's Shutdown, so its final report holds what every pipeline saw.
type sharedProcessors struct {
	judge judge.Evaluator

	mu         sync.Mutex
	processors map[*Config]*sharedProcessor
}

type sharedProcessor struct {
	p    *canaryProcessor
	refs int
}

func newSharedProcessors(j judge.Evaluator) *sharedProcessors {
	return &sharedProcessors{judge: j, processors: map[*Config]*sharedProcessor{}}
}

// acquire returns the processor of cfg, creating it (with set's telemetry and logger) for the
// first pipeline.
func (s *sharedProcessors) acquire(set processor.Settings, cfg *Config) (*canaryProcessor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp, ok := s.processors[cfg]; ok {
		sp.refs++
		return sp.p, nil
	}
	p, err := newCanaryProcessor(set, cfg, s.judge)
	if err != nil {
		return nil, err
	}
	s.processors[cfg] = &sharedProcessor{p: p, refs: 1}
	return p, nil
}

// release drops one pipeline's reference; it reports whether that was the last one, in which
// case the processor is forgotten and the caller shuts it down.
func (s *sharedProcessors) release(cfg *Config) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.processors[cfg]
	if !ok {
		return false
	}
	sp.refs--
	if sp.refs > 0 {
		return false
	}
	delete(s.processors, cfg)
	return true
}

// options are the processor helper's options of one pipeline's processor: read-only, the shared
// start, and a shutdown that releases this pipeline's reference once.
func (s *sharedProcessors) options(cfg *Config, p *canaryProcessor) []processorhelper.Option {
	var once sync.Once
	shutdown := func(ctx context.Context) error {
		last := false
		once.Do(func() { last = s.release(cfg) })
		if !last {
			return nil
		}
		return p.shutdown(ctx)
	}
	return []processorhelper.Option{
		// The processor only reads telemetry.
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(shutdown),
	}
}

func (s *sharedProcessors) createTraces(
	ctx context.Context,
	set processor.Settings,
	cfg component.Config,
	next consumer.Traces,
) (processor.Traces, error) {
	proc, _, err := s.traces(ctx, set, cfg.(*Config), next)
	return proc, err
}

func (s *sharedProcessors) createLogs(
	ctx context.Context,
	set processor.Settings,
	cfg component.Config,
	next consumer.Logs,
) (processor.Logs, error) {
	proc, _, err := s.logs(ctx, set, cfg.(*Config), next)
	return proc, err
}

// traces returns the traces processor of one pipeline and the shared canaryProcessor behind it.
func (s *sharedProcessors) traces(
	ctx context.Context,
	set processor.Settings,
	cfg *Config,
	next consumer.Traces,
) (processor.Traces, *canaryProcessor, error) {
	return build(ctx, s, set, cfg, func(p *canaryProcessor, opts []processorhelper.Option) (processor.Traces, error) {
		return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces, opts...)
	})
}

// logs returns the logs processor of one pipeline and the shared canaryProcessor behind it.
func (s *sharedProcessors) logs(
	ctx context.Context,
	set processor.Settings,
	cfg *Config,
	next consumer.Logs,
) (processor.Logs, *canaryProcessor, error) {
	return build(ctx, s, set, cfg, func(p *canaryProcessor, opts []processorhelper.Option) (processor.Logs, error) {
		return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs, opts...)
	})
}

// build wraps the shared canaryProcessor of cfg in one pipeline's processor made by wrap.
func build[P any](
	ctx context.Context,
	s *sharedProcessors,
	set processor.Settings,
	cfg *Config,
	wrap func(*canaryProcessor, []processorhelper.Option) (P, error),
) (P, *canaryProcessor, error) {
	var none P
	p, err := s.acquire(set, cfg)
	if err != nil {
		return none, nil, err
	}
	proc, err := wrap(p, s.options(cfg, p))
	if err != nil {
		s.abandon(ctx, cfg, p)
		return none, nil, err
	}
	return proc, p, nil
}

// abandon releases the reference of a pipeline whose processor could not be built.
func (s *sharedProcessors) abandon(ctx context.Context, cfg *Config, p *canaryProcessor) {
	if s.release(cfg) {
		_ = p.shutdown(ctx)
	}
}
