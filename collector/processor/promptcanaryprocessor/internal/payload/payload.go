// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package payload defines the JSON bodies the processor posts to the control plane: Alert
// (POST /v1/alerts/collector) and Report (POST /v1/reports). Their JSON Schemas live in the
// repository's schemas/ folder (collector-alert.schema.json, report.schema.json); the field
// names here are that contract.
package payload // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/payload"

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"
)

// Paths on the control plane.
const (
	AlertPath  = "/v1/alerts/collector"
	ReportPath = "/v1/reports"
)

// Type values.
const (
	AlertType  = "prompt_canary.alert"
	ReportType = "prompt_canary.report"
)

// ReportOrigin is the "origin" of every report the processor sends. Applications report the
// same calls themselves with origin "application"; the control plane counts, for each rollout,
// the reports of the first origin that reported it and acknowledges the other's as ignored, so
// that no call is counted twice.
const ReportOrigin = "collector"

// timeLayout is RFC 3339 in UTC with milliseconds, which every JSON consumer parses.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Timestamp formats t for a payload.
func Timestamp(t time.Time) string { return t.UTC().Format(timeLayout) }

// Alert is a verdict for the control plane.
type Alert struct {
	// ID is derived from (rollout_id, rule, action): the same verdict, from any Collector and
	// on any retry, carries the same id, which receivers de-duplicate on.
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Source    string         `json:"source"`
	Prompt    string         `json:"prompt"`
	RolloutID string         `json:"rollout_id"`
	Action    judge.Action   `json:"action"`
	Rule      string         `json:"rule"`
	Reason    string         `json:"reason"`
	Evidence  map[string]any `json:"evidence"`
	CreatedAt string         `json:"created_at"`
}

// AlertID returns the stable id of a verdict: "pca_" and the first 32 hex digits of the
// SHA-256 of the three fields as netstrings, each "<byte length>:<UTF-8 bytes>,", in the order
// rollout_id, rule, action. Alerts are delivered at most once per id.
func AlertID(rolloutID, rule string, action judge.Action) string {
	h := sha256.New()
	for _, field := range []string{rolloutID, rule, string(action)} {
		h.Write([]byte(strconv.Itoa(len(field))))
		h.Write([]byte{':'})
		h.Write([]byte(field))
		h.Write([]byte{','})
	}
	return "pca_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// NewAlert builds the alert of verdict v on snapshot s: its action, the rule that decided it,
// that rule's summary as the reason, and the evidence (see AlertEvidence).
func NewAlert(source string, s judge.Snapshot, v judge.Verdict, now time.Time) Alert {
	reason := fmt.Sprintf("rule %s is in breach", v.RuleID)
	if rv := v.Deciding(); rv != nil && rv.Summary != "" {
		reason = rv.Summary
	}
	return Alert{
		ID:        AlertID(s.RolloutID, v.RuleID, v.Action),
		Type:      AlertType,
		Source:    source,
		Prompt:    s.Prompt,
		RolloutID: s.RolloutID,
		Action:    v.Action,
		Rule:      v.RuleID,
		Reason:    reason,
		Evidence:  AlertEvidence(s, v),
		CreatedAt: Timestamp(now),
	}
}

// Versions holds the prompt version last seen in each cohort (omitted when none was seen).
type Versions struct {
	Stable string `json:"stable,omitempty"`
	Canary string `json:"canary,omitempty"`
}

// Series maps a window start (Unix seconds, a JSON object key) to the statistics of the
// samples in that window.
type Series = map[int64]*stats.Stat

// ResponseModels holds the calls per gen_ai.response.model and window start, per cohort; a
// cohort with no model is left out.
type ResponseModels struct {
	Stable map[string]map[int64]int64 `json:"stable,omitempty"`
	Canary map[string]map[int64]int64 `json:"canary,omitempty"`
}

// Report carries one rollout's increments since the processor's previous report of it, per
// cohort, signal attribute and window. The calls of no rollout are reported alike, as the
// "rollout" live:<version> (all in the stable cohort): the control plane's drift monitoring
// watches them. Its rollout_id, window_seconds, stable and canary fields
// are exactly the Python engine's Report (otel_prompt_canary.analysis.stats.Report); the other
// fields are the delivery envelope.
//
// Reports are additive: the control plane merges every report of a rollout by adding the
// statistics of equal (cohort, attribute, window) keys. Each report has a unique id, sent as
// webhook-id on every retry, so a receiver that drops repeated ids counts each once.
type Report struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Source string `json:"source"`
	// Origin is always ReportOrigin: which path sent the report.
	Origin        string            `json:"origin"`
	Prompt        string            `json:"prompt"`
	RolloutID     string            `json:"rollout_id"`
	WindowSeconds int64             `json:"window_seconds"`
	Versions      Versions          `json:"versions"`
	Stable        map[string]Series `json:"stable"`
	Canary        map[string]Series `json:"canary"`
	// ResponseModels counts the calls per response model (omitted when no span named one).
	ResponseModels *ResponseModels `json:"response_models,omitempty"`
	// WindowStart is the start of the earliest window in the report, WindowEnd the end of the
	// latest one (RFC 3339).
	WindowStart string `json:"window_start"`
	WindowEnd   string `json:"window_end"`
	CreatedAt   string `json:"created_at"`
}

// NewReport builds the report of r, whose windows are windowSeconds long.
func NewReport(source string, r tracker.Report, windowSeconds int64, now time.Time) Report {
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, cohort := range r.Windows {
		for _, series := range cohort {
			for start := range series {
				first = min(first, start)
				last = max(last, start)
			}
		}
	}
	rep := Report{
		ID:            "pcr_" + randomHex(16),
		Type:          ReportType,
		Source:        source,
		Origin:        ReportOrigin,
		Prompt:        r.Prompt,
		RolloutID:     r.RolloutID,
		WindowSeconds: windowSeconds,
		Versions:      Versions{Stable: r.Versions[tracker.Stable], Canary: r.Versions[tracker.Canary]},
		Stable:        nonNil(r.Windows[tracker.Stable]),
		Canary:        nonNil(r.Windows[tracker.Canary]),
		CreatedAt:     Timestamp(now),
	}
	if r.Models[tracker.Stable] != nil || r.Models[tracker.Canary] != nil {
		rep.ResponseModels = &ResponseModels{Stable: r.Models[tracker.Stable], Canary: r.Models[tracker.Canary]}
	}
	if first <= last {
		rep.WindowStart = Timestamp(time.Unix(first, 0))
		rep.WindowEnd = Timestamp(time.Unix(last+windowSeconds, 0))
	} else {
		rep.WindowStart, rep.WindowEnd = rep.CreatedAt, rep.CreatedAt
	}
	return rep
}

func nonNil(m map[string]Series) map[string]Series {
	if m == nil {
		return map[string]Series{}
	}
	return m
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
