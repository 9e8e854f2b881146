// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package tracker keeps per-rollout, per-cohort, per-signal statistics behind explicit bounds:
// at most MaxRollouts rollouts, MaxSignalsPerCohort signals in each cohort, MaxPendingWindows
// unreported windows and StepWindows recent windows per signal, and no identifier longer than
// MaxKeyLength bytes. A sample that would exceed a bound is refused (the caller counts it),
// never stored, so memory follows the configuration and not the traffic. Rollouts that receive
// no span for the idle timeout are forgotten.
//
// Each signal (signal.go) keeps three things:
//
//   - its cumulative total since the tracker first saw the rollout: the judge's evidence;
//   - the increments not yet reported, split into fixed windows keyed by their start in Unix
//     seconds, which TakeReports hands over and forgets (report.go). Reports are additive: the
//     control plane merges them by adding, exactly as the Python engine's Report.merge does;
//   - the most recent windows, from which Snapshot totals the current ramp step (snapshot.go):
//     the windows that start at or after the step's start, as the Python engine's
//     Report.snapshot(since=step_started_at) does. The control plane announces a new step a
//     policy refresh after it starts, so these windows must reach back that far.
package tracker // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/tracker"

import (
	"strings"
	"sync"
	"time"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/stats"
)

// MaxKeyLength bounds the bytes of any prompt name, version, rollout id or signal attribute
// the tracker stores.
const MaxKeyLength = 256

// Cohort is stable or canary.
type Cohort int

const (
	// Stable is the cohort served the stable prompt version.
	Stable Cohort = iota
	// Canary is the cohort served the candidate version.
	Canary
)

// ParseCohort maps the prompt_canary.cohort attribute value to a Cohort.
func ParseCohort(s string) (Cohort, bool) {
	switch s {
	case "stable":
		return Stable, true
	case "canary":
		return Canary, true
	}
	return 0, false
}

// Sample is one signal value on one span: a check outcome (Kind Proportion, Pass) or a
// quantized score (Kind Mean, Q in millionths, see stats.Quantize). Attr is the span attribute
// it came from, such as prompt_canary.check.format_valid.
type Sample struct {
	Attr string
	Kind stats.Kind
	Pass bool
	Q    int64
}

// Observation is what one canary span contributes.
type Observation struct {
	Prompt    string
	Version   string
	RolloutID string
	Cohort    Cohort
	// Model is the span's gen_ai.response.model ("" when absent): reports count the calls per
	// model, which the control plane's drift monitoring compares with the version's snapshot.
	Model string
	// Time places the span in a window (span end time or arrival time).
	Time    time.Time
	Samples []Sample
}

// Refusal says which bound refused (part of) an observation.
type Refusal string

const (
	// Accepted means every sample was recorded.
	Accepted Refusal = ""
	// RefusedRollouts means the rollout was new and MaxRollouts are already tracked.
	RefusedRollouts Refusal = "rollouts"
	// RefusedSignals means a sample named a new signal in a full cohort; the span's other
	// samples were recorded.
	RefusedSignals Refusal = "signals"
	// RefusedWindows means a sample fell in a new window of a signal that already holds
	// MaxPendingWindows unreported windows (spans with scattered timestamps).
	RefusedWindows Refusal = "windows"
	// RefusedKeyLength means an identifier exceeded MaxKeyLength.
	RefusedKeyLength Refusal = "key_length"
)

// Limits are the tracker's bounds and window size.
type Limits struct {
	MaxRollouts         int
	MaxSignalsPerCohort int
	MaxPendingWindows   int
	// StepWindows is how many recent windows each signal keeps to total the current ramp step
	// (at least one).
	StepWindows int
	// Window is the report window size, a whole number of seconds (at least one).
	Window      time.Duration
	IdleTimeout time.Duration
}

type key struct {
	prompt  string
	rollout string
}

type cohortState struct {
	version string
	signals map[string]*signal
	// models holds the unreported calls per response model and window start, at most
	// MaxSignalsPerCohort models.
	models map[string]map[int64]int64
}

type rollout struct {
	prompt      string
	id          string
	cohorts     [2]cohortState
	firstSample time.Time
	lastSample  time.Time
	lastSeen    time.Time
	dirty       bool
}

// Tracker is safe for concurrent use. Observe holds the lock for a map lookup and a few
// additions per sample, so the span path stays cheap; snapshots copy under the same lock.
type Tracker struct {
	limits        Limits
	windowSeconds int64
	now           func() time.Time

	mu       sync.Mutex
	rollouts map[key]*rollout
}

// New returns an empty tracker. now is the wall clock of idle eviction.
func New(limits Limits, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	ws := int64(limits.Window / time.Second)
	if ws < 1 {
		ws = 1
	}
	if limits.StepWindows < 1 {
		limits.StepWindows = 1
	}
	return &Tracker{limits: limits, windowSeconds: ws, now: now, rollouts: make(map[key]*rollout)}
}

// WindowSeconds is the report window size in seconds.
func (t *Tracker) WindowSeconds() int64 { return t.windowSeconds }

func (t *Tracker) windowStart(at time.Time) int64 {
	s := at.Unix()
	start := s - s%t.windowSeconds
	if s < 0 && s%t.windowSeconds != 0 {
		start -= t.windowSeconds
	}
	return start
}

// Observe adds one observation. It returns whether anything was recorded and which bound, if
// any, refused part or all of it.
func (t *Tracker) Observe(o *Observation) (recorded bool, refusal Refusal) {
	if len(o.Prompt) > MaxKeyLength || len(o.RolloutID) > MaxKeyLength || len(o.Version) > MaxKeyLength {
		return false, RefusedKeyLength
	}
	now := t.now()
	window := t.windowStart(o.Time)

	t.mu.Lock()
	defer t.mu.Unlock()

	r, ok := t.rollouts[key{prompt: o.Prompt, rollout: o.RolloutID}]
	if !ok {
		if len(t.rollouts) >= t.limits.MaxRollouts {
			return false, RefusedRollouts
		}
		// Identifiers from pdata may share memory with a large request buffer; clone them
		// once, when they become long-lived keys.
		r = &rollout{
			prompt:      strings.Clone(o.Prompt),
			id:          strings.Clone(o.RolloutID),
			firstSample: o.Time,
			lastSample:  o.Time,
		}
		r.cohorts[Stable].signals = make(map[string]*signal)
		r.cohorts[Canary].signals = make(map[string]*signal)
		t.rollouts[key{prompt: r.prompt, rollout: r.id}] = r
	}
	r.lastSeen = now
	r.dirty = true
	if o.Time.Before(r.firstSample) {
		r.firstSample = o.Time
	}
	if o.Time.After(r.lastSample) {
		r.lastSample = o.Time
	}
	c := &r.cohorts[o.Cohort]
	if o.Version != "" && c.version != o.Version {
		c.version = strings.Clone(o.Version)
	}
	for i := range o.Samples {
		if ref := t.add(c, &o.Samples[i], window); ref != Accepted && refusal == Accepted {
			refusal = ref
		}
	}
	if o.Model != "" {
		if ref := t.addModel(c, o.Model, window, 1); ref != Accepted && refusal == Accepted {
			refusal = ref
		}
	}
	return true, refusal
}

// addModel counts calls answered by model in window; callers hold mu.
func (t *Tracker) addModel(c *cohortState, model string, window, calls int64) Refusal {
	if len(model) > MaxKeyLength {
		return RefusedKeyLength
	}
	windows, ok := c.models[model]
	if !ok {
		if c.models == nil {
			c.models = make(map[string]map[int64]int64, 1)
		}
		if len(c.models) >= t.limits.MaxSignalsPerCohort {
			return RefusedSignals
		}
		windows = make(map[int64]int64, 1)
		c.models[strings.Clone(model)] = windows
	}
	if _, open := windows[window]; !open && len(windows) >= t.limits.MaxPendingWindows {
		return RefusedWindows
	}
	windows[window] += calls
	return Accepted
}

// add records one sample; callers hold mu.
func (t *Tracker) add(c *cohortState, s *Sample, window int64) Refusal {
	if len(s.Attr) > MaxKeyLength {
		return RefusedKeyLength
	}
	sig, ok := c.signals[s.Attr]
	if !ok {
		if len(c.signals) >= t.limits.MaxSignalsPerCohort {
			return RefusedSignals
		}
		sig = newSignal(s.Kind, t.limits.StepWindows)
		c.signals[strings.Clone(s.Attr)] = sig
	}
	if sig.total.Kind != s.Kind {
		// An attribute keeps the kind it was first seen with; the attribute names carry their
		// kind, so only malformed data gets here.
		return Accepted
	}
	if !sig.record(s, window, t.windowSeconds, t.limits.MaxPendingWindows) {
		return RefusedWindows
	}
	return Accepted
}

// Len returns the number of tracked rollouts.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.rollouts)
}
