// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configretry"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"
)

// Policy sources.
const (
	// PolicySourceControlPlane polls GET {control_plane.endpoint}/v1/policies.
	PolicySourceControlPlane = "control_plane"
	// PolicySourceFile reads policy.file.
	PolicySourceFile = "file"
	// PolicySourceNone loads no policy: the processor only reports aggregates and the
	// control plane (or the user's alerting) judges them.
	PolicySourceNone = "none"
)

// Timestamp choices.
const (
	// TimestampSpanEnd places each span in a rollout's window by its end time, and each late
	// result by its log record's timestamp (its observed timestamp when that is unset).
	TimestampSpanEnd = "span_end"
	// TimestampReceived places each span and late result by the time the processor saw it.
	TimestampReceived = "received"
)

// Bounds enforced by Validate.
const (
	minInterval     = 100 * time.Millisecond
	minSecretLength = 16
)

// Config is the promptcanary processor's configuration.
type Config struct {
	// ControlPlane is the prompt-canary control plane (`prompt-canary serve`). Endpoint is its
	// base URL, such as http://127.0.0.1:8080: alerts go to {endpoint}/v1/alerts/collector,
	// reports to {endpoint}/v1/reports and, with policy.source control_plane, policies come
	// from {endpoint}/v1/policies. Every Collector HTTP client setting applies (timeout, tls,
	// headers, proxy_url, auth...). The timeout bounds each request; it must be positive.
	ControlPlane confighttp.ClientConfig `mapstructure:"control_plane"`

	// Webhook configures how alerts and reports are signed, queued and retried.
	Webhook WebhookConfig `mapstructure:"webhook"`

	// Policy says where the rollout policies come from.
	Policy PolicyConfig `mapstructure:"policy"`

	// Limits bound the processor's memory, whatever the traffic.
	Limits LimitsConfig `mapstructure:"limits"`

	// ReportInterval is how often each rollout that received spans since its last report is
	// posted to the control plane: the report carries the increments since the previous one,
	// per cohort, signal and window. At least 100ms.
	ReportInterval time.Duration `mapstructure:"report_interval"`

	// ReportWindow is the size of the time windows reports split statistics into (their
	// window_seconds), so the control plane can total any range of windows, such as the
	// current ramp step. A whole number of seconds, at least 1s.
	ReportWindow time.Duration `mapstructure:"report_window"`

	// EvaluationInterval is how often the judge evaluates every rollout that has a policy.
	// The judge is anytime-valid, so a short interval does not inflate false verdicts; it only
	// costs CPU. At least 100ms.
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`

	// Timestamp chooses the clock that places spans and late results in report windows:
	// "span_end" (default) uses each span's end time and each log record's timestamp (its
	// observed timestamp when unset); "received" uses the time the processor saw it.
	Timestamp string `mapstructure:"timestamp"`

	// Source names this Collector in reports and alerts, so the control plane can merge the
	// reports of several gateways. Empty means the host name.
	Source string `mapstructure:"source"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// WebhookConfig configures deliveries to the control plane.
type WebhookConfig struct {
	// Secret is the HMAC-SHA256 key shared with the control plane, used for the Standard
	// Webhooks signature of every alert and report. "whsec_<base64>" is decoded as in
	// Standard Webhooks; any other value is used as UTF-8 bytes. At least 16 bytes of key.
	// Required unless InsecureSkipSignature is true; read it from the environment, e.g.
	// ${env:PROMPT_CANARY_WEBHOOK_SECRET}.
	Secret configopaque.String `mapstructure:"secret"`

	// InsecureSkipSignature sends unsigned deliveries. Only for local development: the
	// control plane should refuse unsigned alerts. Cannot be combined with Secret.
	InsecureSkipSignature bool `mapstructure:"insecure_skip_signature"`

	// QueueSize bounds the alerts and reports waiting for delivery. When the queue is full, a
	// new alert is dropped and counted (otelcol_processor_promptcanary_delivery_queue_dropped)
	// and raised again at the next evaluation; reports wait in the tracker, their increments
	// kept, until a report tick finds room for them. At least 1.
	QueueSize int `mapstructure:"queue_size"`

	// RetryOnFailure retries failed deliveries (network errors, 408, 425, 429 and 5xx
	// answers) with exponential backoff and jitter; other 4xx answers are final.
	RetryOnFailure configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PolicyConfig says where rollout policies come from.
type PolicyConfig struct {
	// Source is "control_plane" (default: poll GET {control_plane.endpoint}/v1/policies),
	// "file" (read File) or "none" (no policy: report aggregates only, never alert).
	Source string `mapstructure:"source"`

	// File is a local YAML or JSON policy document, required with source "file" and
	// refused otherwise. It is re-read every RefreshInterval.
	File string `mapstructure:"file"`

	// RefreshInterval is how often policies are reloaded; a failed reload keeps the previous
	// policies. At least 100ms (unless source is "none").
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LimitsConfig bounds the processor's state. Canary spans that would exceed a bound pass
// through unchanged and are counted (otelcol_processor_promptcanary_overflow), never stored.
type LimitsConfig struct {
	// MaxRollouts bounds the rollouts tracked at once (a rollout is a prompt name and
	// rollout id pair). At least 1.
	MaxRollouts int `mapstructure:"max_rollouts"`

	// MaxSignalsPerCohort bounds the distinct signals (checks, scores and token usages)
	// tracked for each cohort of a rollout. At least 1.
	MaxSignalsPerCohort int `mapstructure:"max_signals_per_cohort"`

	// MaxPendingWindows bounds the report windows one signal may hold between two reports.
	// Spans whose timestamps fall in more windows than this (late or scattered spans) are
	// refused. At least 1.
	MaxPendingWindows int `mapstructure:"max_pending_windows"`

	// MaxStepWindows is how many recent report windows each signal keeps so that the judge can
	// total the current ramp step: the windows that start at or after the step's start, which
	// the control plane announces (GET /v1/policies) up to one policy refresh after the step
	// began. Unless policy.source is "none", MaxStepWindows × report_window must cover
	// policy.refresh_interval plus one window. At least 1.
	MaxStepWindows int `mapstructure:"max_step_windows"`

	// IdleTimeout forgets a rollout that received no span for this long, after a last
	// report; it frees the slot for new rollouts. At least report_interval.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration; each message names the field and the fix.
func (cfg *Config) Validate() error {
	var errs []error
	errs = append(errs, cfg.validateControlPlane()...)
	errs = append(errs, cfg.validateWebhook()...)
	errs = append(errs, cfg.validatePolicy()...)
	errs = append(errs, cfg.validateLimits()...)
	if cfg.ReportInterval < minInterval {
		errs = append(errs, fmt.Errorf("report_interval must be at least %s, got %s", minInterval, cfg.ReportInterval))
	}
	if cfg.ReportWindow < time.Second || cfg.ReportWindow%time.Second != 0 {
		errs = append(errs, fmt.Errorf("report_window must be a whole number of seconds, at least 1s, got %s", cfg.ReportWindow))
	}
	if cfg.EvaluationInterval < minInterval {
		errs = append(errs, fmt.Errorf("evaluation_interval must be at least %s, got %s", minInterval, cfg.EvaluationInterval))
	}
	if cfg.Timestamp != TimestampSpanEnd && cfg.Timestamp != TimestampReceived {
		errs = append(errs, fmt.Errorf("timestamp must be %q or %q, got %q", TimestampSpanEnd, TimestampReceived, cfg.Timestamp))
	}
	return errors.Join(errs...)
}

func (cfg *Config) validateControlPlane() []error {
	endpoint := cfg.ControlPlane.Endpoint
	if endpoint == "" {
		return []error{errors.New("control_plane.endpoint must be set to the control plane's base URL, such as http://127.0.0.1:8080")}
	}
	var errs []error
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("control_plane.endpoint %q is not a URL: %w", endpoint, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("control_plane.endpoint %q must start with http:// or https://", endpoint))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("control_plane.endpoint %q has no host", endpoint))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("control_plane.endpoint %q must be a base URL without query or fragment", endpoint))
	}
	if cfg.ControlPlane.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("control_plane.timeout must be positive, got %s: a request without a timeout could hold deliveries forever", cfg.ControlPlane.Timeout))
	}
	return errs
}

func (cfg *Config) validateWebhook() []error {
	var errs []error
	secret := string(cfg.Webhook.Secret)
	switch {
	case secret == "" && !cfg.Webhook.InsecureSkipSignature:
		errs = append(errs, errors.New("webhook.secret must be set (for example ${env:PROMPT_CANARY_WEBHOOK_SECRET}); "+
			"to send unsigned alerts in local development, set webhook.insecure_skip_signature: true instead"))
	case secret != "" && cfg.Webhook.InsecureSkipSignature:
		errs = append(errs, errors.New("webhook.secret and webhook.insecure_skip_signature are both set; remove one: "+
			"a secret means signed deliveries"))
	case secret != "":
		key, err := delivery.DecodeSecret(secret)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("webhook.secret: %w", err))
		case len(key) < minSecretLength:
			errs = append(errs, fmt.Errorf("webhook.secret must hold at least %d bytes of key, got %d", minSecretLength, len(key)))
		}
	}
	if cfg.Webhook.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("webhook.queue_size must be at least 1, got %d", cfg.Webhook.QueueSize))
	}
	return errs
}

func (cfg *Config) validatePolicy() []error {
	var errs []error
	p := cfg.Policy
	switch p.Source {
	case PolicySourceControlPlane, PolicySourceNone:
		if p.File != "" {
			errs = append(errs, fmt.Errorf("policy.file is set but policy.source is %q; set policy.source: file to use it, or remove policy.file", p.Source))
		}
	case PolicySourceFile:
		if p.File == "" {
			errs = append(errs, errors.New("policy.file must name a YAML or JSON policy document when policy.source is \"file\""))
		}
	default:
		errs = append(errs, fmt.Errorf("policy.source must be %q, %q or %q, got %q",
			PolicySourceControlPlane, PolicySourceFile, PolicySourceNone, p.Source))
	}
	if p.Source != PolicySourceNone && p.RefreshInterval < minInterval {
		errs = append(errs, fmt.Errorf("policy.refresh_interval must be at least %s, got %s", minInterval, p.RefreshInterval))
	}
	return errs
}

func (cfg *Config) validateLimits() []error {
	var errs []error
	l := cfg.Limits
	if l.MaxRollouts < 1 {
		errs = append(errs, fmt.Errorf("limits.max_rollouts must be at least 1, got %d", l.MaxRollouts))
	}
	if l.MaxSignalsPerCohort < 1 {
		errs = append(errs, fmt.Errorf("limits.max_signals_per_cohort must be at least 1, got %d", l.MaxSignalsPerCohort))
	}
	if l.MaxPendingWindows < 1 {
		errs = append(errs, fmt.Errorf("limits.max_pending_windows must be at least 1, got %d", l.MaxPendingWindows))
	}
	if l.MaxStepWindows < 1 {
		errs = append(errs, fmt.Errorf("limits.max_step_windows must be at least 1, got %d", l.MaxStepWindows))
	} else if err := cfg.validateStepCoverage(); err != nil {
		errs = append(errs, err)
	}
	if l.IdleTimeout < cfg.ReportInterval {
		errs = append(errs, fmt.Errorf("limits.idle_timeout (%s) must be at least report_interval (%s), so that every rollout is reported before it is forgotten",
			l.IdleTimeout, cfg.ReportInterval))
	}
	return errs
}

// validateStepCoverage checks that the step history reaches back one policy refresh: a step
// the control plane announces a refresh after it began is then still totalled from its start.
func (cfg *Config) validateStepCoverage() error {
	window, refresh := cfg.ReportWindow, cfg.Policy.RefreshInterval
	if cfg.Policy.Source == PolicySourceNone || window < time.Second || window%time.Second != 0 || refresh <= 0 {
		return nil // nothing to cover, or a rule above already refuses the values
	}
	if covered := time.Duration(cfg.Limits.MaxStepWindows) * window; covered >= refresh+window {
		return nil
	}
	need := int((refresh+window-1)/window) + 1
	return fmt.Errorf("limits.max_step_windows (%d) × report_window (%s) must cover policy.refresh_interval (%s) plus one window, "+
		"so that a ramp step is totalled from its start when the control plane announces it a refresh late; set limits.max_step_windows to at least %d",
		cfg.Limits.MaxStepWindows, window, refresh, need)
}
