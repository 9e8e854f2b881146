// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id     component.ID
		expect func(*Config)
	}{
		{
			id: component.NewID(metadata.Type),
			expect: func(c *Config) {
				c.ControlPlane.Endpoint = "http://127.0.0.1:8080"
				c.Webhook.Secret = "this-is-a-test-secret-0123"
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "full"),
			expect: func(c *Config) {
				c.ControlPlane.Endpoint = "https://canary.internal:8443"
				c.ControlPlane.Timeout = 3 * time.Second
				c.ControlPlane.Headers = configopaque.MapList{{Name: "x-tenant", Value: "shop"}}
				c.Webhook.Secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
				c.Webhook.QueueSize = 500
				c.Webhook.RetryOnFailure.InitialInterval = 2 * time.Second
				c.Webhook.RetryOnFailure.MaxInterval = time.Minute
				c.Webhook.RetryOnFailure.MaxElapsedTime = 15 * time.Minute
				c.Webhook.RetryOnFailure.Multiplier = 3
				c.Webhook.RetryOnFailure.RandomizationFactor = 0.1
				c.Policy = PolicyConfig{Source: PolicySourceFile, File: "testdata/policy.yaml", RefreshInterval: time.Minute}
				c.Limits = LimitsConfig{MaxRollouts: 200, MaxSignalsPerCohort: 16, MaxPendingWindows: 8, MaxStepWindows: 12, IdleTimeout: 6 * time.Hour}
				c.ReportInterval = 30 * time.Second
				c.ReportWindow = 30 * time.Second
				c.EvaluationInterval = 5 * time.Second
				c.Timestamp = TimestampReceived
				c.Source = "gateway-0"
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "report_only"),
			expect: func(c *Config) {
				c.ControlPlane.Endpoint = "http://127.0.0.1:8080"
				c.Webhook.InsecureSkipSignature = true
				c.Policy.Source = PolicySourceNone
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			factory := NewFactory()
			cfg := factory.CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))

			want := factory.CreateDefaultConfig().(*Config)
			tt.expect(want)
			assert.Equal(t, want, cfg)
		})
	}
}

func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{file: "invalid_missing_endpoint.yaml", want: "control_plane.endpoint must be set to the control plane's base URL"},
		{file: "invalid_endpoint_scheme.yaml", want: `control_plane.endpoint "ftp://127.0.0.1:8080" must start with http:// or https://`},
		{file: "invalid_endpoint_host.yaml", want: `control_plane.endpoint "http:///v1" has no host`},
		{file: "invalid_endpoint_query.yaml", want: "must be a base URL without query or fragment"},
		{file: "invalid_timeout.yaml", want: "control_plane.timeout must be positive, got 0s"},
		{file: "invalid_missing_secret.yaml", want: "webhook.secret must be set (for example ${env:PROMPT_CANARY_WEBHOOK_SECRET}); to send unsigned alerts in local development, set webhook.insecure_skip_signature: true instead"},
		{file: "invalid_secret_and_insecure.yaml", want: "webhook.secret and webhook.insecure_skip_signature are both set"},
		{file: "invalid_secret_encoding.yaml", want: `webhook.secret: a secret starting with "whsec_" must continue with standard base64`},
		{file: "invalid_short_secret.yaml", want: "webhook.secret must hold at least 16 bytes of key, got 5"},
		{file: "invalid_queue_size.yaml", want: "webhook.queue_size must be at least 1, got 0"},
		{file: "invalid_retry.yaml", want: "randomization_factor value must be less than or equal to 1"},
		{file: "invalid_policy_source.yaml", want: `policy.source must be "control_plane", "file" or "none", got "s3"`},
		{file: "invalid_policy_file_missing.yaml", want: `policy.file must name a YAML or JSON policy document when policy.source is "file"`},
		{file: "invalid_policy_file_unused.yaml", want: `policy.file is set but policy.source is "control_plane"`},
		{file: "invalid_refresh_interval.yaml", want: "policy.refresh_interval must be at least 100ms, got 10ms"},
		{file: "invalid_max_rollouts.yaml", want: "limits.max_rollouts must be at least 1, got 0"},
		{file: "invalid_max_signals.yaml", want: "limits.max_signals_per_cohort must be at least 1, got -1"},
		{file: "invalid_max_pending_windows.yaml", want: "limits.max_pending_windows must be at least 1, got 0"},
		{file: "invalid_max_step_windows.yaml", want: "limits.max_step_windows must be at least 1, got 0"},
		{file: "invalid_step_windows_coverage.yaml", want: "limits.max_step_windows (2) × report_window (1m0s) must cover policy.refresh_interval (5m0s) plus one window, " +
			"so that a ramp step is totalled from its start when the control plane announces it a refresh late; set limits.max_step_windows to at least 6"},
		{file: "invalid_idle_timeout.yaml", want: "limits.idle_timeout (1m0s) must be at least report_interval (5m0s)"},
		{file: "invalid_report_interval.yaml", want: "report_interval must be at least 100ms, got 0s"},
		{file: "invalid_report_window.yaml", want: "report_window must be a whole number of seconds, at least 1s, got 1.5s"},
		{file: "invalid_evaluation_interval.yaml", want: "evaluation_interval must be at least 100ms, got 1ms"},
		{file: "invalid_timestamp.yaml", want: `timestamp must be "span_end" or "received", got "start"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cm, err := confmaptest.LoadConf(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			require.NoError(t, cm.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestInvalidFilesEachBreakOneRule(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid_*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		cm, err := confmaptest.LoadConf(f)
		require.NoError(t, err)
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		require.NoError(t, cm.Unmarshal(cfg))
		if err := cfg.Validate(); err != nil {
			assert.NotContains(t, err.Error(), "\n", "%s breaks more than one rule: %v", f, err)
		}
	}
}

func TestDefaultConfigRefusesToRunWithoutEndpointAndSecret(t *testing.T) {
	err := confmap.Validate(NewFactory().CreateDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "control_plane.endpoint must be set")
	assert.Contains(t, err.Error(), "webhook.secret must be set")
}

func TestStepCoverageIsCheckedOnlyWhenPoliciesAreLoaded(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ControlPlane.Endpoint = "http://127.0.0.1:8080"
	cfg.Webhook.Secret = testSecret
	cfg.Limits.MaxStepWindows = 1
	require.ErrorContains(t, cfg.Validate(), "set limits.max_step_windows to at least 2")
	cfg.Policy.RefreshInterval = 59 * time.Second
	require.ErrorContains(t, cfg.Validate(), "set limits.max_step_windows to at least 2")
	cfg.Limits.MaxStepWindows = 2
	require.NoError(t, cfg.Validate(), "2 windows of 60s cover 59s plus a window")
	cfg.Limits.MaxStepWindows = 1
	cfg.Policy.Source = PolicySourceNone
	require.NoError(t, cfg.Validate(), "without policies there is no step to total")
}
