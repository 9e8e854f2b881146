// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package delivery posts alerts and reports to the control plane from one background
// goroutine: a bounded queue (a full queue drops the new message and counts it), Standard
// Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature), retries with
// exponential backoff and jitter, and de-duplication of alerts by key. Enqueue never blocks,
// so nothing here can slow the span path.
package delivery // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/config/configretry"
	"go.uber.org/zap"
)

// Kind is what a message carries.
type Kind string

const (
	// KindAlert is a verdict for POST /v1/alerts/collector.
	KindAlert Kind = "alert"
	// KindReport is a per-cohort aggregate for POST /v1/reports.
	KindReport Kind = "report"
)

// Message is one delivery.
type Message struct {
	// ID is sent as webhook-id on every attempt, so the receiver can drop repeats.
	ID   string
	Kind Kind
	// Path is appended to the endpoint, e.g. "/v1/alerts/collector".
	Path string
	Body []byte
	// DedupKey, when set, makes Enqueue refuse a second message with the same key while the
	// first is queued, delivered or rejected by the receiver.
	DedupKey string
}

// Outcome is what Enqueue did with a message.
type Outcome int

const (
	// Enqueued means the message will be delivered in the background.
	Enqueued Outcome = iota
	// Duplicate means a message with the same DedupKey was already taken.
	Duplicate
	// QueueFull means the queue was full; the message was dropped.
	QueueFull
	// Closed means the sender is shut down; the message was dropped.
	Closed
)

// Observer receives delivery events for the processor's own telemetry.
type Observer interface {
	Delivered(kind Kind)
	// Failed is called after every failed attempt; abandoned says no attempt will follow.
	Failed(kind Kind, abandoned bool)
	Dropped(kind Kind)
}

// Settings configure a Sender.
type Settings struct {
	// Endpoint is the control plane's base URL.
	Endpoint string
	Client   *http.Client
	// Key signs every message; nil sends unsigned messages.
	Key       []byte
	QueueSize int
	Retry     configretry.BackOffConfig
	// DedupCapacity bounds the remembered de-duplication keys (oldest forgotten first).
	DedupCapacity int
	// DrainTimeout bounds Shutdown's last attempt at the messages still queued.
	DrainTimeout time.Duration
	UserAgent    string
	Logger       *zap.Logger
	Observer     Observer
	// Now is the clock of webhook-timestamp and of the retry budget.
	Now func() time.Time
}

type dedupEntry struct {
	key string
	gen uint64
}

// Sender delivers messages; create it with New, then Start, then Shutdown once.
type Sender struct {
	set      Settings
	endpoint string
	queue    chan Message

	mu       sync.Mutex
	closed   bool
	seen     map[string]uint64
	ring     []dedupEntry
	ringNext int
	gen      uint64

	runCtx    context.Context
	cancelRun context.CancelFunc
	quit      chan struct{}
	done      chan struct{}
	started   bool
}

// New returns a sender; nothing runs until Start.
func New(set Settings) *Sender {
	if set.Now == nil {
		set.Now = time.Now
	}
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	if set.DedupCapacity <= 0 {
		set.DedupCapacity = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		set:       set,
		endpoint:  strings.TrimRight(set.Endpoint, "/"),
		queue:     make(chan Message, set.QueueSize),
		seen:      make(map[string]uint64),
		ring:      make([]dedupEntry, set.DedupCapacity),
		runCtx:    ctx,
		cancelRun: cancel,
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
}

// Start runs the delivery goroutine.
func (s *Sender) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	go s.run()
}

// Enqueue takes m for background delivery without blocking.
func (s *Sender) Enqueue(m Message) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.set.Observer.Dropped(m.Kind)
		return Closed
	}
	if m.DedupKey != "" {
		if _, ok := s.seen[m.DedupKey]; ok {
			return Duplicate
		}
	}
	select {
	case s.queue <- m:
	default:
		s.set.Observer.Dropped(m.Kind)
		return QueueFull
	}
	if m.DedupKey != "" {
		s.remember(m.DedupKey)
	}
	return Enqueued
}

// Room returns how many more messages the queue takes now (0 once shut down). Only the
// delivery goroutine takes messages out, so the room seen by a single producer can only grow
// until that producer enqueues.
func (s *Sender) Room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	return cap(s.queue) - len(s.queue)
}

// remember records key, forgetting the oldest key when the ring is full. Callers hold mu.
func (s *Sender) remember(key string) {
	if old := s.ring[s.ringNext]; old.key != "" && s.seen[old.key] == old.gen {
		delete(s.seen, old.key)
	}
	s.gen++
	s.seen[key] = s.gen
	s.ring[s.ringNext] = dedupEntry{key: key, gen: s.gen}
	s.ringNext = (s.ringNext + 1) % len(s.ring)
}

// forget lets a key be enqueued again, after a delivery that was given up for a reason that
// may pass (the receiver never answered, or answered with a retryable status).
func (s *Sender) forget(key string) {
	if key == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.seen, key)
}

// Shutdown stops taking messages, makes one last attempt at those still queued within the
// drain timeout (or ctx, whichever ends first), and waits for the goroutine to end.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()

	close(s.quit)
	if !started {
		s.cancelRun()
		return nil
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancelRun()
		<-s.done
	}
	s.cancelRun()
	return nil
}

func (s *Sender) run() {
	defer close(s.done)
	for {
		// Prefer quitting over taking more work, so a busy queue cannot delay Shutdown.
		select {
		case <-s.quit:
			s.drain(nil)
			return
		default:
		}
		select {
		case <-s.quit:
			s.drain(nil)
			return
		case m := <-s.queue:
			if interrupted := s.deliver(m); interrupted {
				s.drain(&m)
				return
			}
		}
	}
}

// drain makes one attempt at pending (a message interrupted during its backoff) and at each
// queued message, until the drain timeout.
func (s *Sender) drain(pending *Message) {
	ctx, cancel := context.WithTimeout(s.runCtx, s.set.DrainTimeout)
	defer cancel()
	try := func(m Message) {
		if ctx.Err() != nil {
			s.set.Observer.Failed(m.Kind, true)
			return
		}
		if _, err := s.attempt(ctx, m); err != nil {
			s.set.Observer.Failed(m.Kind, true)
			s.set.Logger.Warn("Control plane delivery abandoned at shutdown",
				zap.String("kind", string(m.Kind)), zap.String("id", m.ID), zap.Error(err))
			return
		}
		s.set.Observer.Delivered(m.Kind)
	}
	if pending != nil {
		try(*pending)
	}
	for {
		select {
		case m := <-s.queue:
			try(m)
		default:
			return
		}
	}
}

// deliver attempts m until it is accepted, rejected or the retry budget runs out. It returns
// true when Shutdown interrupted a backoff wait; the caller then owns m.
func (s *Sender) deliver(m Message) (interrupted bool) {
	retry := s.set.Retry
	start := s.set.Now()
	interval := retry.InitialInterval
	for {
		res, err := s.attempt(s.runCtx, m)
		if err == nil {
			s.set.Observer.Delivered(m.Kind)
			return false
		}
		if res.permanent || !retry.Enabled {
			s.set.Observer.Failed(m.Kind, true)
			if !res.permanent {
				s.forget(m.DedupKey)
			}
			s.set.Logger.Warn("Control plane delivery abandoned",
				zap.String("kind", string(m.Kind)), zap.String("id", m.ID), zap.Error(err))
			return false
		}
		wait := jitter(interval, retry.RandomizationFactor)
		if res.retryAfter > wait {
			wait = res.retryAfter
			if retry.MaxInterval > 0 && wait > retry.MaxInterval {
				wait = retry.MaxInterval
			}
		}
		if retry.MaxElapsedTime > 0 && s.set.Now().Sub(start)+wait > retry.MaxElapsedTime {
			s.set.Observer.Failed(m.Kind, true)
			s.forget(m.DedupKey)
			s.set.Logger.Warn("Control plane delivery abandoned after retries",
				zap.String("kind", string(m.Kind)), zap.String("id", m.ID), zap.Error(err))
			return false
		}
		s.set.Observer.Failed(m.Kind, false)
		s.set.Logger.Debug("Control plane delivery failed; retrying",
			zap.String("kind", string(m.Kind)), zap.String("id", m.ID), zap.Duration("in", wait), zap.Error(err))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.quit:
			timer.Stop()
			return true
		}
		interval = time.Duration(float64(interval) * retry.Multiplier)
		if retry.MaxInterval > 0 && interval > retry.MaxInterval {
			interval = retry.MaxInterval
		}
		if interval <= 0 {
			interval = retry.InitialInterval
		}
	}
}

func jitter(d time.Duration, factor float64) time.Duration {
	if factor <= 0 || d <= 0 {
		return d
	}
	delta := factor * float64(d)
	return time.Duration(float64(d) - delta + rand.Float64()*2*delta) //nolint:gosec // jitter needs no cryptographic randomness
}

// errStatus is a non-2xx answer.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string {
	if e.body == "" {
		return fmt.Sprintf("control plane answered %d %s", e.code, http.StatusText(e.code))
	}
	return fmt.Sprintf("control plane answered %d %s: %s", e.code, http.StatusText(e.code), e.body)
}

// attemptResult qualifies a failed attempt.
type attemptResult struct {
	// permanent says the receiver refused the message for good (a 4xx other than 408, 425
	// and 429), so retrying cannot help.
	permanent bool
	// retryAfter is the receiver's Retry-After, if any.
	retryAfter time.Duration
}

// attempt posts m once.
func (s *Sender) attempt(ctx context.Context, m Message) (attemptResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+m.Path, bytes.NewReader(m.Body))
	if err != nil {
		return attemptResult{permanent: true}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.set.UserAgent != "" {
		req.Header.Set("User-Agent", s.set.UserAgent)
	}
	if s.set.Key != nil {
		ts := s.set.Now().Unix()
		req.Header.Set(HeaderID, m.ID)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(s.set.Key, m.ID, ts, m.Body))
	}
	resp, err := s.set.Client.Do(req)
	if err != nil {
		return attemptResult{}, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{}, nil
	}
	statusErr := &errStatus{code: resp.StatusCode, body: strings.TrimSpace(string(snippet))}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return attemptResult{retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}, statusErr
	default:
		return attemptResult{permanent: true}, statusErr
	}
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
