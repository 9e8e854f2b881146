// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadata"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/payload"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

// policiesPath is where the control plane serves the active rollouts' policies and ramp state.
const policiesPath = "/v1/policies?include=rollouts"

// dedupCapacityPerRollout sizes the alert de-duplication memory: room for several rules and
// actions of every rollout the processor may track.
const dedupCapacityPerRollout = 8

// canaryProcessor holds the per-rollout state, the background loop and the delivery queue.
// The span and log paths (processTraces, processLogs) touch only the tracker and the telemetry
// counters; all network I/O happens on background goroutines started in start and stopped in
// shutdown.
type canaryProcessor struct {
	cfg       *Config
	set       processor.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	judge     judge.Evaluator
	tracker   *tracker.Tracker
	now       func() time.Time
	overflow  map[tracker.Refusal]metric.AddOption

	mu       sync.Mutex
	source   string
	client   *http.Client
	sender   *delivery.Sender
	policies *policy.Store
	stop     chan struct{}
	loopDone chan struct{}
	shutDown bool
}

func newCanaryProcessor(set processor.Settings, cfg *Config, j judge.Evaluator) (*canaryProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("promptcanary telemetry: %w", err)
	}
	p := &canaryProcessor{
		cfg:       cfg,
		set:       set,
		logger:    set.Logger,
		telemetry: tb,
		judge:     j,
		now:       time.Now,
		overflow: map[tracker.Refusal]metric.AddOption{
			tracker.RefusedRollouts:  attrOption("limit", string(tracker.RefusedRollouts)),
			tracker.RefusedSignals:   attrOption("limit", string(tracker.RefusedSignals)),
			tracker.RefusedWindows:   attrOption("limit", string(tracker.RefusedWindows)),
			tracker.RefusedKeyLength: attrOption("limit", string(tracker.RefusedKeyLength)),
		},
	}
	p.tracker = tracker.New(tracker.Limits{
		MaxRollouts:         cfg.Limits.MaxRollouts,
		MaxSignalsPerCohort: cfg.Limits.MaxSignalsPerCohort,
		MaxPendingWindows:   cfg.Limits.MaxPendingWindows,
		StepWindows:         cfg.Limits.MaxStepWindows,
		Window:              cfg.ReportWindow,
		IdleTimeout:         cfg.Limits.IdleTimeout,
	}, func() time.Time { return p.now() })
	// Read at every collection, so the gauge is current between report ticks.
	err = tb.RegisterProcessorPromptcanaryRolloutsTrackedCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(p.tracker.Len()))
		return nil
	})
	if err != nil {
		tb.Shutdown()
		return nil, fmt.Errorf("promptcanary telemetry: %w", err)
	}
	return p, nil
}

func attrOption(key, value string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))
}

// spanTime places a span in its rollout's window.
func (p *canaryProcessor) spanTime(span ptrace.Span) time.Time {
	if p.cfg.Timestamp == TimestampSpanEnd {
		if ts := span.EndTimestamp(); ts != 0 {
			return ts.AsTime()
		}
	}
	return p.now()
}

// recordBatch adds one batch's counts to its signal's inspected and recorded counters and to
// the overflow counter.
func (p *canaryProcessor) recordBatch(ctx context.Context, c *batchCounts, inspected, recorded metric.Int64Counter) {
	if c.inspected > 0 {
		inspected.Add(ctx, c.inspected)
	}
	if c.recorded > 0 {
		recorded.Add(ctx, c.recorded)
	}
	for refusal, n := range c.overflow {
		p.telemetry.ProcessorPromptcanaryOverflow.Add(ctx, n, p.overflow[refusal])
	}
}

func (p *canaryProcessor) start(ctx context.Context, host component.Host) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutDown || p.sender != nil {
		return nil
	}
	client, err := p.cfg.ControlPlane.ToClient(ctx, host.GetExtensions(), p.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("promptcanary: control plane client: %w", err)
	}
	p.client = client
	var key []byte
	if secret := string(p.cfg.Webhook.Secret); secret != "" {
		if key, err = delivery.DecodeSecret(secret); err != nil {
			return fmt.Errorf("promptcanary: webhook.secret: %w", err)
		}
	}
	p.source = p.cfg.Source
	if p.source == "" {
		if p.source, err = os.Hostname(); err != nil || p.source == "" {
			p.source = "otelcol-promptcanary"
		}
	}

	p.sender = delivery.New(delivery.Settings{
		Endpoint:      p.cfg.ControlPlane.Endpoint,
		Client:        client,
		Key:           key,
		QueueSize:     p.cfg.Webhook.QueueSize,
		Retry:         p.cfg.Webhook.RetryOnFailure,
		DedupCapacity: dedupCapacityPerRollout * p.cfg.Limits.MaxRollouts,
		DrainTimeout:  p.cfg.ControlPlane.Timeout,
		UserAgent:     "otelcol-promptcanary/" + p.set.BuildInfo.Version,
		Logger:        p.logger,
		Observer:      newDeliveryTelemetry(p.telemetry),
		Now:           p.now,
	})
	p.sender.Start()

	onFailure := func() { p.telemetry.ProcessorPromptcanaryPolicyRefreshFailures.Add(context.Background(), 1) }
	switch p.cfg.Policy.Source {
	case PolicySourceControlPlane:
		url := strings.TrimRight(p.cfg.ControlPlane.Endpoint, "/") + policiesPath
		p.policies = policy.NewStore(policy.HTTPLoader{Client: client, URL: url}, p.cfg.Policy.RefreshInterval, p.logger, onFailure)
	case PolicySourceFile:
		p.policies = policy.NewStore(policy.FileLoader{Path: p.cfg.Policy.File}, p.cfg.Policy.RefreshInterval, p.logger, onFailure)
	}
	if p.policies != nil {
		p.policies.Start()
	}

	p.stop = make(chan struct{})
	p.loopDone = make(chan struct{})
	go p.loop(p.stop, p.loopDone)
	return nil
}

// loop runs the evaluation and report tickers until stop closes.
func (p *canaryProcessor) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	evaluate := time.NewTicker(p.cfg.EvaluationInterval)
	defer evaluate.Stop()
	report := time.NewTicker(p.cfg.ReportInterval)
	defer report.Stop()
	for {
		select {
		case <-stop:
			return
		case <-evaluate.C:
			p.evaluate()
		case <-report.C:
			p.report()
		}
	}
}

func (p *canaryProcessor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutDown {
		return nil
	}
	p.shutDown = true
	if p.stop != nil {
		close(p.stop)
		<-p.loopDone
	}
	if p.policies != nil {
		p.policies.Shutdown()
	}
	var err error
	if p.sender != nil {
		// A last report carries what changed since the previous one; what the queue cannot
		// take is dropped and counted, since the statistics end with the processor.
		p.enqueueReports(p.tracker.TakeReports(-1))
		err = p.sender.Shutdown(ctx)
	}
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	p.telemetry.Shutdown()
	return err
}

// evaluate asks the judge about every rollout that a policy judges, and queues one alert per
// breach: the decided action and the rule that decided it.
func (p *canaryProcessor) evaluate() {
	if p.policies == nil || p.policies.Len() == 0 {
		return
	}
	type rolloutKey struct{ prompt, id string }
	targets := map[rolloutKey]policy.Target{}
	snapshots := p.tracker.Snapshots(func(prompt, rolloutID string) (time.Time, bool) {
		target, ok := p.policies.Lookup(prompt, rolloutID)
		if !ok {
			return time.Time{}, false
		}
		targets[rolloutKey{prompt, rolloutID}] = target
		if target.Ramp == nil {
			return time.Time{}, true
		}
		return target.Ramp.StepStartedAt, true
	})
	now := p.now()
	for _, snap := range snapshots {
		r := judge.Rollout{Snapshot: snap, Target: targets[rolloutKey{snap.Prompt, snap.RolloutID}], Now: now}
		verdict, err := p.safeEvaluate(r)
		if err != nil {
			p.logger.Warn("The judge could not evaluate a rollout; it is skipped until the next tick",
				zap.String("prompt", snap.Prompt), zap.String("rollout_id", snap.RolloutID), zap.Error(err))
			continue
		}
		if verdict.Decision == judge.DecisionBreach {
			p.raise(snap, verdict)
		}
	}
}

func (p *canaryProcessor) safeEvaluate(r judge.Rollout) (verdict judge.Verdict, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			verdict, err = judge.Verdict{}, fmt.Errorf("judge panicked: %v", rec)
		}
	}()
	return p.judge.EvaluateRollout(r)
}

// raise queues the alert of a breach, at most once per rollout, rule and action.
func (p *canaryProcessor) raise(snap judge.Snapshot, v judge.Verdict) {
	if !v.Action.Valid() || v.RuleID == "" {
		p.logger.Warn("Ignoring a verdict without a valid action and rule",
			zap.String("rollout_id", snap.RolloutID), zap.String("rule", v.RuleID), zap.String("action", string(v.Action)))
		return
	}
	alert := payload.NewAlert(p.source, snap, v, p.now())
	body, err := json.Marshal(alert)
	if err != nil {
		p.logger.Warn("Cannot encode an alert",
			zap.String("rollout_id", snap.RolloutID), zap.String("rule", v.RuleID), zap.Error(err))
		return
	}
	outcome := p.sender.Enqueue(delivery.Message{
		ID:       alert.ID,
		Kind:     delivery.KindAlert,
		Path:     payload.AlertPath,
		Body:     body,
		DedupKey: alert.ID,
	})
	if outcome == delivery.Enqueued {
		p.telemetry.ProcessorPromptcanaryVerdicts.Add(context.Background(), 1,
			attrOption("action", string(v.Action)))
		p.logger.Info("Prompt canary verdict",
			zap.String("prompt", snap.Prompt), zap.String("rollout_id", snap.RolloutID),
			zap.String("rule", v.RuleID), zap.String("action", string(v.Action)), zap.String("reason", alert.Reason))
	}
}

// report queues the increments of every rollout that received spans since its last report,
// then forgets idle rollouts after their final report. It takes only as many reports as the
// delivery queue has room for: the other rollouts keep their increments in the tracker, and
// a later tick reports them, so a busy queue delays increments but does not lose them.
func (p *canaryProcessor) report() {
	p.enqueueReports(p.tracker.TakeReports(p.sender.Room()))
	p.enqueueReports(p.tracker.EvictIdle(p.sender.Room()))
}

// enqueueReports queues reports for delivery. A report the queue refuses (counted as dropped
// by the sender) has its increments put back into the tracker for the next report; those the
// tracker's bounds refuse are lost and counted as overflow, once per report.
func (p *canaryProcessor) enqueueReports(reports []tracker.Report) {
	now := p.now()
	for _, r := range reports {
		rep := payload.NewReport(p.source, r, p.tracker.WindowSeconds(), now)
		body, err := json.Marshal(rep)
		if err != nil {
			p.logger.Warn("Cannot encode a report", zap.String("rollout_id", r.RolloutID), zap.Error(err))
			continue
		}
		outcome := p.sender.Enqueue(delivery.Message{ID: rep.ID, Kind: delivery.KindReport, Path: payload.ReportPath, Body: body})
		if outcome == delivery.Enqueued {
			continue
		}
		if refusal := p.tracker.Restore(r); refusal != tracker.Accepted {
			p.telemetry.ProcessorPromptcanaryOverflow.Add(context.Background(), 1, p.overflow[refusal])
			p.logger.Warn("Lost part of an undelivered report: a tracker bound is full",
				zap.String("rollout_id", r.RolloutID), zap.String("limit", string(refusal)))
		}
	}
}

// deliveryTelemetry turns delivery events into the processor's own metrics.
type deliveryTelemetry struct {
	tb        *metadata.TelemetryBuilder
	kind      map[delivery.Kind]metric.AddOption
	retried   map[delivery.Kind]metric.AddOption
	abandoned map[delivery.Kind]metric.AddOption
}

func newDeliveryTelemetry(tb *metadata.TelemetryBuilder) *deliveryTelemetry {
	d := &deliveryTelemetry{
		tb:        tb,
		kind:      map[delivery.Kind]metric.AddOption{},
		retried:   map[delivery.Kind]metric.AddOption{},
		abandoned: map[delivery.Kind]metric.AddOption{},
	}
	for _, k := range []delivery.Kind{delivery.KindAlert, delivery.KindReport} {
		d.kind[k] = attrOption("kind", string(k))
		d.retried[k] = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", string(k)), attribute.String("outcome", "retried")))
		d.abandoned[k] = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", string(k)), attribute.String("outcome", "abandoned")))
	}
	return d
}

func (d *deliveryTelemetry) Delivered(k delivery.Kind) {
	d.tb.ProcessorPromptcanaryDeliveries.Add(context.Background(), 1, d.kind[k])
}

func (d *deliveryTelemetry) Failed(k delivery.Kind, abandoned bool) {
	opt := d.retried[k]
	if abandoned {
		opt = d.abandoned[k]
	}
	d.tb.ProcessorPromptcanaryDeliveryFailures.Add(context.Background(), 1, opt)
}

func (d *deliveryTelemetry) Dropped(k delivery.Kind) {
	d.tb.ProcessorPromptcanaryDeliveryQueueDropped.Add(context.Background(), 1, d.kind[k])
}
