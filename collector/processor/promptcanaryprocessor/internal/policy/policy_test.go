// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func TestParseMapsPromptsToPolicies(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		prompts []string
	}{
		{name: "yaml", doc: "policies:\n  support-reply:\n    rules: []\n  summariser:\n    rules: []\n", prompts: []string{"support-reply", "summariser"}},
		{name: "json", doc: `{"policies": {"a": {"signals": [], "rules": []}}}`, prompts: []string{"a"}},
		{name: "empty document", doc: "", prompts: nil},
		{name: "no policies", doc: "policies:\n", prompts: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			require.NoError(t, err)
			assert.Len(t, got, len(tt.prompts))
			for _, p := range tt.prompts {
				assert.Equal(t, p, got[p].Prompt)
			}
		})
	}
}

func TestParseKeepsThePolicyDocumentAsJSON(t *testing.T) {
	got, err := Parse([]byte("policies:\n  support-reply:\n    alpha: 0.05\n    signals:\n      - name: format_valid\n        kind: proportion\n        harmful: decrease\n    rules: []\n"))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(got["support-reply"].Document, &doc))
	assert.InDelta(t, 0.05, doc["alpha"], 0)
	assert.Equal(t, "proportion", doc["signals"].([]any)[0].(map[string]any)["kind"])
}

func TestParseRefusesBadDocuments(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{name: "not yaml", doc: "{", want: "neither YAML nor JSON"},
		{name: "scalar", doc: "42", want: "must be an object"},
		{name: "list", doc: "[{prompt: a}]", want: "must be an object"},
		{name: "unknown key", doc: "rules: []", want: `unknown key "rules"`},
		{name: "policies not a map", doc: "policies: [a]", want: `"policies" must map prompt names`},
		{name: "policy not an object", doc: "policies: {a: 3}", want: `policy of prompt "a" is not an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestStoreKeepsTheLastGoodPoliciesWhenARefreshFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("policies:\n  a:\n    rules: []\n"), 0o600))
	var failures atomic.Int32
	s := NewStore(FileLoader{Path: path}, time.Hour, zap.NewNop(), func() { failures.Add(1) })

	require.NoError(t, s.Refresh(context.Background()))
	_, ok := s.Get("a")
	assert.True(t, ok)
	assert.True(t, s.Loaded())

	require.NoError(t, os.WriteFile(path, []byte("policies: [a]"), 0o600))
	require.Error(t, s.Refresh(context.Background()))
	_, ok = s.Get("a")
	assert.True(t, ok, "the previous policies stay in force")
	assert.Equal(t, int32(1), failures.Load())

	require.NoError(t, os.Remove(path))
	require.Error(t, s.Refresh(context.Background()))
	assert.Equal(t, int32(2), failures.Load())
}

func TestStorePollsTheControlPlane(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/policies" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"policies": {"support-reply": {"signals": [], "rules": []}}}`))
	}))
	defer srv.Close()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()

	var failures atomic.Int32
	s := NewStore(HTTPLoader{Client: client, URL: srv.URL + "/v1/policies"}, 10*time.Millisecond, zap.NewNop(), func() { failures.Add(1) })
	s.Start()
	defer s.Shutdown()

	require.Eventually(t, func() bool { _, ok := s.Get("support-reply"); return ok }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int32(1), failures.Load(), "the first answer was a 503")
	assert.Equal(t, 1, s.Len())
}
