// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package promptcanaryprocessor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/metadatatest"
)

// testSecret signs everything the tests' control plane receives.
const testSecret = "this-is-a-test-secret-0123"

// t0 is the start of a minute, so that 60 s windows start at t0.
var t0 = time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

// testConfig returns a valid configuration pointed at endpoint, with short intervals.
func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ControlPlane.Endpoint = endpoint
	cfg.ControlPlane.Timeout = 2 * time.Second
	cfg.Webhook.Secret = testSecret
	cfg.Webhook.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.Webhook.RetryOnFailure.MaxInterval = 40 * time.Millisecond
	cfg.Webhook.RetryOnFailure.MaxElapsedTime = 10 * time.Second
	cfg.Policy.Source = PolicySourceNone
	cfg.ReportInterval = time.Hour
	cfg.EvaluationInterval = time.Hour
	cfg.Source = "test-gateway"
	return cfg
}

// harness is a started processor with its sink and telemetry.
type harness struct {
	proc   processor.Traces
	canary *canaryProcessor
	sink   *consumertest.TracesSink
	tel    *componenttest.Telemetry
}

func newHarness(t *testing.T, cfg *Config, j judge.Evaluator) *harness {
	t.Helper()
	if j == nil {
		j = judge.Sequential{}
	}
	h := &harness{sink: new(consumertest.TracesSink), tel: componenttest.NewTelemetry()}
	proc, canary, err := newTracesProcessor(context.Background(), metadatatest.NewSettings(h.tel), cfg, h.sink, j)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	h.proc, h.canary = proc, canary
	t.Cleanup(func() {
		require.NoError(t, proc.Shutdown(context.Background()))
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return h
}

func (h *harness) consume(t *testing.T, td ptrace.Traces) {
	t.Helper()
	require.NoError(t, h.proc.ConsumeTraces(context.Background(), td))
}

// call is one LLM call span of the contract.
type call struct {
	prompt, version, cohort, rollout string
	end                              time.Time
	attrs                            map[string]any
}

// traces builds one resource with one scope holding the calls as spans, plus an unrelated
// HTTP client span.
func traces(calls ...call) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-bot")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otel_prompt_canary")
	for i, c := range calls {
		span := ss.Spans().AppendEmpty()
		span.SetName("chat " + c.prompt)
		span.SetTraceID(pcommon.TraceID{byte(i + 1)})
		span.SetSpanID(pcommon.SpanID{byte(i + 1)})
		end := c.end
		if end.IsZero() {
			end = t0
		}
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Second)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		a := span.Attributes()
		a.PutStr("gen_ai.operation.name", "chat")
		if c.prompt != "" {
			a.PutStr(attrPromptName, c.prompt)
		}
		if c.version != "" {
			a.PutStr(attrPromptVer, c.version)
		}
		if c.cohort != "" {
			a.PutStr(attrCohort, c.cohort)
		}
		if c.rollout != "" {
			a.PutStr(attrRolloutID, c.rollout)
		}
		if err := a.FromRaw(merge(a.AsRaw(), c.attrs)); err != nil {
			panic(err)
		}
	}
	http := ss.Spans().AppendEmpty()
	http.SetName("POST /v1/chat/completions")
	http.Attributes().PutStr("http.request.method", "POST")
	return td
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// posted is one request the fake control plane received, with its signature checked.
type posted struct {
	path      string
	id        string
	signed    bool
	body      []byte
	timestamp int64
}

// controlPlane is a fake prompt-canary control plane on loopback.
type controlPlane struct {
	*httptest.Server
	// failAlerts makes the first failAlerts alert posts answer 503.
	failAlerts atomic.Int32
	alertCalls atomic.Int32
	policies   atomic.Value // string served at /v1/policies
	// policyGets counts GET /v1/policies, notModified the 304 answers among them.
	policyGets  atomic.Int32
	notModified atomic.Int32
	// policyQuery is the query string of the last GET /v1/policies.
	policyQuery atomic.Value

	mu  sync.Mutex
	got []posted
}

func newControlPlane(t *testing.T) *controlPlane {
	cp := &controlPlane{}
	cp.policies.Store(`{"policies": {}}`)
	key, err := delivery.DecodeSecret(testSecret)
	require.NoError(t, err)
	cp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/policies" {
			// As the control plane does: an ETag on every answer, 304 when it is current.
			cp.policyGets.Add(1)
			cp.policyQuery.Store(r.URL.RawQuery)
			body := cp.policies.Load().(string)
			sum := sha256.Sum256([]byte(body))
			etag := `"p` + hex.EncodeToString(sum[:16]) + `"`
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				cp.notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			_, _ = io.WriteString(w, body)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(delivery.HeaderTimestamp), 10, 64)
		p := posted{
			path: r.URL.Path, id: r.Header.Get(delivery.HeaderID), body: body, timestamp: ts,
			signed: delivery.Verify(key, r.Header.Get(delivery.HeaderID), ts, body, r.Header.Get(delivery.HeaderSignature)),
		}
		if r.URL.Path == "/v1/alerts/collector" {
			n := cp.alertCalls.Add(1)
			if n <= cp.failAlerts.Load() {
				http.Error(w, "restarting", http.StatusServiceUnavailable)
				return
			}
		}
		cp.mu.Lock()
		cp.got = append(cp.got, p)
		cp.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(cp.Close)
	return cp
}

// accepted returns the accepted posts to path.
func (cp *controlPlane) accepted(path string) []posted {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []posted
	for _, p := range cp.got {
		if p.path == path {
			out = append(out, p)
		}
	}
	return out
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	return m
}

// countingConsumer counts spans without keeping them.
type countingConsumer struct {
	mu    sync.Mutex
	spans int
}

func (c *countingConsumer) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spans += td.SpanCount()
	return nil
}

func (*countingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
