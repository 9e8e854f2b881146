// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configretry"
)

var testKey = []byte("0123456789abcdef-test")

// counter records Observer events.
type counter struct {
	mu        sync.Mutex
	delivered map[Kind]int
	retried   map[Kind]int
	abandoned map[Kind]int
	dropped   map[Kind]int
}

func newCounter() *counter {
	return &counter{delivered: map[Kind]int{}, retried: map[Kind]int{}, abandoned: map[Kind]int{}, dropped: map[Kind]int{}}
}

func (c *counter) Delivered(k Kind) { c.mu.Lock(); c.delivered[k]++; c.mu.Unlock() }
func (c *counter) Dropped(k Kind)   { c.mu.Lock(); c.dropped[k]++; c.mu.Unlock() }
func (c *counter) Failed(k Kind, abandoned bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if abandoned {
		c.abandoned[k]++
	} else {
		c.retried[k]++
	}
}

func (c *counter) get(m map[Kind]int, k Kind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

// received is one request the test server accepted.
type received struct {
	path, id, timestamp, signature string
	body                           []byte
}

// flakyServer answers failures with status until it has refused failFirst requests, then 204.
type flakyServer struct {
	*httptest.Server
	failFirst int32
	status    int
	calls     atomic.Int32
	mu        sync.Mutex
	got       []received
}

func newFlakyServer(t *testing.T, failFirst int32, status int) *flakyServer {
	f := &flakyServer{failFirst: failFirst, status: status}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := f.calls.Add(1)
		f.mu.Lock()
		f.got = append(f.got, received{
			path: r.URL.Path, id: r.Header.Get(HeaderID), timestamp: r.Header.Get(HeaderTimestamp),
			signature: r.Header.Get(HeaderSignature), body: body,
		})
		f.mu.Unlock()
		if n <= f.failFirst {
			http.Error(w, "not now", f.status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *flakyServer) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

func fastRetry() configretry.BackOffConfig {
	r := configretry.NewDefaultBackOffConfig()
	r.InitialInterval = 5 * time.Millisecond
	r.MaxInterval = 20 * time.Millisecond
	r.MaxElapsedTime = 5 * time.Second
	r.Multiplier = 2
	r.RandomizationFactor = 0.2
	return r
}

func newTestSender(t *testing.T, endpoint string, obs Observer, mutate func(*Settings)) *Sender {
	set := Settings{
		Endpoint:      endpoint,
		Client:        &http.Client{Timeout: 2 * time.Second},
		Key:           testKey,
		QueueSize:     16,
		Retry:         fastRetry(),
		DedupCapacity: 64,
		DrainTimeout:  time.Second,
		UserAgent:     "test",
		Observer:      obs,
	}
	if mutate != nil {
		mutate(&set)
	}
	s := New(set)
	t.Cleanup(func() {
		require.NoError(t, s.Shutdown(context.Background()))
		set.Client.CloseIdleConnections()
	})
	return s
}

func TestRetriesUntilTheServerRecoversAndSignsEveryAttempt(t *testing.T) {
	srv := newFlakyServer(t, 3, http.StatusServiceUnavailable)
	obs := newCounter()
	s := newTestSender(t, srv.URL+"/", obs, nil)
	s.Start()

	body := []byte(`{"id":"pca_1"}`)
	require.Equal(t, Enqueued, s.Enqueue(Message{ID: "pca_1", Kind: KindAlert, Path: "/v1/alerts/collector", Body: body, DedupKey: "k"}))

	require.Eventually(t, func() bool { return obs.get(obs.delivered, KindAlert) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, 3, obs.get(obs.retried, KindAlert))
	assert.Equal(t, 0, obs.get(obs.abandoned, KindAlert))

	reqs := srv.requests()
	require.Len(t, reqs, 4)
	for _, r := range reqs {
		assert.Equal(t, "/v1/alerts/collector", r.path)
		assert.Equal(t, "pca_1", r.id, "the id is the same on every attempt")
		assert.Equal(t, body, r.body)
		ts, err := strconv.ParseInt(r.timestamp, 10, 64)
		require.NoError(t, err)
		assert.InDelta(t, time.Now().Unix(), ts, 10)
		assert.True(t, Verify(testKey, r.id, ts, r.body, r.signature), "signature %q", r.signature)
	}
}

func TestPermanentRejectionIsNotRetriedAndStaysDeduplicated(t *testing.T) {
	srv := newFlakyServer(t, 100, http.StatusUnauthorized)
	obs := newCounter()
	s := newTestSender(t, srv.URL, obs, nil)
	s.Start()

	m := Message{ID: "pca_2", Kind: KindAlert, Path: "/a", Body: []byte(`{}`), DedupKey: "k2"}
	require.Equal(t, Enqueued, s.Enqueue(m))
	require.Eventually(t, func() bool { return obs.get(obs.abandoned, KindAlert) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int32(1), srv.calls.Load())
	assert.Equal(t, 0, obs.get(obs.retried, KindAlert))
	assert.Equal(t, Duplicate, s.Enqueue(m), "the receiver said no; the same alert is not sent again")
}

func TestGivingUpOnATransientFailureAllowsTheAlertAgain(t *testing.T) {
	srv := newFlakyServer(t, 1000, http.StatusBadGateway)
	obs := newCounter()
	s := newTestSender(t, srv.URL, obs, func(set *Settings) {
		set.Retry.MaxElapsedTime = 60 * time.Millisecond
	})
	s.Start()

	m := Message{ID: "pca_3", Kind: KindAlert, Path: "/a", Body: []byte(`{}`), DedupKey: "k3"}
	require.Equal(t, Enqueued, s.Enqueue(m))
	require.Eventually(t, func() bool { return obs.get(obs.abandoned, KindAlert) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Positive(t, obs.get(obs.retried, KindAlert))
	assert.Equal(t, Enqueued, s.Enqueue(m), "a later evaluation may raise it again")
}

func TestDeduplicatesByKey(t *testing.T) {
	srv := newFlakyServer(t, 0, http.StatusOK)
	obs := newCounter()
	s := newTestSender(t, srv.URL, obs, nil)
	s.Start()

	for range 5 {
		out := s.Enqueue(Message{ID: "pca_4", Kind: KindAlert, Path: "/a", Body: []byte(`{}`), DedupKey: "rollout\x00rule\x00rollback"})
		assert.Contains(t, []Outcome{Enqueued, Duplicate}, out)
	}
	assert.Equal(t, Enqueued, s.Enqueue(Message{ID: "pca_5", Kind: KindAlert, Path: "/a", Body: []byte(`{}`), DedupKey: "rollout\x00rule\x00pause"}))
	// Reports carry no key and are never de-duplicated.
	assert.Equal(t, Enqueued, s.Enqueue(Message{ID: "r1", Kind: KindReport, Path: "/r", Body: []byte(`{}`)}))
	assert.Equal(t, Enqueued, s.Enqueue(Message{ID: "r1", Kind: KindReport, Path: "/r", Body: []byte(`{}`)}))

	require.Eventually(t, func() bool {
		return obs.get(obs.delivered, KindAlert) == 2 && obs.get(obs.delivered, KindReport) == 2
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int32(4), srv.calls.Load())
}

func TestDedupMemoryIsBounded(t *testing.T) {
	s := New(Settings{QueueSize: 1000, DedupCapacity: 3, Observer: newCounter()})
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	for i := range 10 {
		require.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindAlert, DedupKey: strconv.Itoa(i)}))
	}
	assert.Len(t, s.seen, 3)
	assert.Equal(t, Duplicate, s.Enqueue(Message{Kind: KindAlert, DedupKey: "9"}))
	assert.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindAlert, DedupKey: "0"}), "the oldest key was forgotten")
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	obs := newCounter()
	// Not started: nothing drains the queue.
	s := New(Settings{QueueSize: 2, DedupCapacity: 8, Observer: obs})
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	assert.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindReport}))
	assert.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindReport}))
	assert.Equal(t, QueueFull, s.Enqueue(Message{Kind: KindReport}))
	assert.Equal(t, QueueFull, s.Enqueue(Message{Kind: KindAlert, DedupKey: "x"}))
	assert.Equal(t, 1, obs.get(obs.dropped, KindReport))
	assert.Equal(t, 1, obs.get(obs.dropped, KindAlert))
	_, remembered := s.seen["x"]
	assert.False(t, remembered, "a dropped alert can be raised again")
}

func TestUnsignedWhenNoKey(t *testing.T) {
	srv := newFlakyServer(t, 0, http.StatusOK)
	obs := newCounter()
	s := newTestSender(t, srv.URL, obs, func(set *Settings) { set.Key = nil })
	s.Start()
	require.Equal(t, Enqueued, s.Enqueue(Message{ID: "r", Kind: KindReport, Path: "/v1/reports", Body: []byte(`{}`)}))
	require.Eventually(t, func() bool { return obs.get(obs.delivered, KindReport) == 1 }, 5*time.Second, 5*time.Millisecond)
	r := srv.requests()[0]
	assert.Empty(t, r.signature)
	assert.Empty(t, r.id)
}

func TestShutdownInterruptsBackoffAndDrainsOnce(t *testing.T) {
	srv := newFlakyServer(t, 1, http.StatusServiceUnavailable)
	obs := newCounter()
	s := newTestSender(t, srv.URL, obs, func(set *Settings) {
		set.Retry.InitialInterval = time.Hour
		set.Retry.MaxInterval = time.Hour
		set.Retry.MaxElapsedTime = 0
		set.Retry.RandomizationFactor = 0
	})
	s.Start()
	require.Equal(t, Enqueued, s.Enqueue(Message{ID: "a", Kind: KindAlert, Path: "/a", Body: []byte(`{}`)}))
	require.Eventually(t, func() bool { return obs.get(obs.retried, KindAlert) == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, Enqueued, s.Enqueue(Message{ID: "r", Kind: KindReport, Path: "/r", Body: []byte(`{}`)}))

	start := time.Now()
	require.NoError(t, s.Shutdown(context.Background()))
	assert.Less(t, time.Since(start), 5*time.Second, "shutdown does not wait out the backoff")
	assert.Equal(t, 1, obs.get(obs.delivered, KindAlert), "the interrupted alert gets a last attempt")
	assert.Equal(t, 1, obs.get(obs.delivered, KindReport), "queued messages get a last attempt")
	assert.Equal(t, Closed, s.Enqueue(Message{Kind: KindReport}))
}

func TestShutdownWithoutStart(t *testing.T) {
	s := New(Settings{QueueSize: 1, Observer: newCounter()})
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestRetryAfterIsHonouredUpToMaxInterval(t *testing.T) {
	assert.Equal(t, 3*time.Second, parseRetryAfter("3"))
	assert.Zero(t, parseRetryAfter(""))
	assert.Zero(t, parseRetryAfter("soon"))
	assert.Positive(t, parseRetryAfter(time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)))
}

func TestRoomIsWhatTheQueueStillTakes(t *testing.T) {
	s := newTestSender(t, "http://127.0.0.1:1", newCounter(), func(set *Settings) { set.QueueSize = 2 })
	assert.Equal(t, 2, s.Room())
	require.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindReport}))
	assert.Equal(t, 1, s.Room())
	require.Equal(t, Enqueued, s.Enqueue(Message{Kind: KindReport}))
	assert.Zero(t, s.Room())
	require.NoError(t, s.Shutdown(context.Background()))
	assert.Zero(t, s.Room(), "a shut down sender takes nothing")
}
