// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestStoreKeepsTheLastGoodPoliciesWhenARefreshFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("policies:\n  a: "+minimalPolicy+"\n"), 0o600))
	var failures atomic.Int32
	s := NewStore(FileLoader{Path: path}, time.Hour, zap.NewNop(), func() { failures.Add(1) })

	require.NoError(t, s.Refresh(context.Background()))
	_, ok := s.Lookup("a", "any")
	assert.True(t, ok)
	assert.True(t, s.Loaded())
	require.NoError(t, s.Refresh(context.Background()), "an unchanged file is not parsed again")

	require.NoError(t, os.WriteFile(path, []byte("policies: [a]"), 0o600))
	require.Error(t, s.Refresh(context.Background()))
	_, ok = s.Lookup("a", "any")
	assert.True(t, ok, "the previous policies stay in force")
	assert.Equal(t, int32(1), failures.Load())

	require.NoError(t, os.Remove(path))
	require.Error(t, s.Refresh(context.Background()))
	assert.Equal(t, int32(2), failures.Load())
}

func TestStoreLogsInvalidEntriesAndAppliesTheOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`{"policies": {"a": `+minimalPolicy+`, "b": {"rules": []}}}`), 0o600))
	core, logs := observer.New(zap.WarnLevel)
	var failures atomic.Int32
	s := NewStore(FileLoader{Path: path}, time.Hour, zap.New(core), func() { failures.Add(1) })
	require.NoError(t, s.Refresh(context.Background()))
	assert.Equal(t, 1, s.Len())
	assert.Zero(t, failures.Load())
	require.Equal(t, 1, logs.Len())
	assert.Contains(t, logs.All()[0].ContextMap()["error"], `policy of prompt "b"`)
}

// TestStorePollsTheControlPlaneWithETags plays the Python service's contract: an ETag on every
// answer, 304 when If-None-Match names the current one.
func TestStorePollsTheControlPlaneWithETags(t *testing.T) {
	var (
		calls    atomic.Int32
		mu       sync.Mutex
		body     = `{"policies": {}}`
		etag     = `"p1"`
		notMod   atomic.Int32
		lastSeen atomic.Value
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/policies" || r.URL.Query().Get("include") != "rollouts" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		lastSeen.Store(r.Header.Get("If-None-Match"))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()

	var failures atomic.Int32
	s := NewStore(HTTPLoader{Client: client, URL: srv.URL + "/v1/policies?include=rollouts"}, 10*time.Millisecond, zap.NewNop(), func() { failures.Add(1) })
	s.Start()
	defer s.Shutdown()

	require.Eventually(t, func() bool { return notMod.Load() >= 2 }, 5*time.Second, 5*time.Millisecond)
	assert.True(t, s.Loaded())
	assert.Equal(t, `"p1"`, lastSeen.Load())
	assert.Equal(t, int32(1), failures.Load(), "the first answer was a 503")

	mu.Lock()
	body, etag = controlPlaneAnswer, `"p2"`
	mu.Unlock()
	require.Eventually(t, func() bool { _, ok := s.Lookup("support-reply", "ro-1"); return ok }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return lastSeen.Load() == `"p2"` }, 5*time.Second, 5*time.Millisecond)
}

func TestHTTPLoaderRefusesAnUnexpected304AndOversizedDocuments(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, maxDocumentBytes+1))
			return
		}
		w.WriteHeader(http.StatusNotModified)
	}))
	defer srv.Close()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	_, err := HTTPLoader{Client: client, URL: srv.URL + "/x"}.Load(context.Background(), "")
	require.ErrorContains(t, err, "304")
	_, err = HTTPLoader{Client: client, URL: srv.URL + "/big"}.Load(context.Background(), "")
	require.ErrorContains(t, err, "exceeds")
}
