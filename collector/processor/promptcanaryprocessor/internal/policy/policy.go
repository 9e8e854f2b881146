// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package policy loads the rollout policies the judge applies, from the control plane
// (GET {endpoint}/v1/policies, polled) or from a local YAML or JSON file (re-read at the same
// interval), and holds the last set that parsed. A failed refresh keeps the previous set in
// force: policies never block spans.
//
// The document, in YAML or JSON, maps prompt names to their policies:
//
//	{"policies": {"support-reply": {"alpha": 0.05, "signals": [...], "rules": [...]}, ...}}
//
// Each policy is the project's per-prompt policy document (schemas/policy.schema.json); it is
// passed to the judge unchanged, as JSON.
package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/judge"
)

// maxDocumentBytes bounds what one refresh reads, so a misbehaving server cannot exhaust memory.
const maxDocumentBytes = 4 << 20

// Parse reads a policy document (see the package documentation) into policies by prompt.
func Parse(data []byte) (map[string]judge.Policy, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("policy document is neither YAML nor JSON: %w", err)
	}
	if doc == nil {
		return map[string]judge.Policy{}, nil
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New(`policy document must be an object {"policies": {"<prompt>": <policy>, ...}}`)
	}
	for k := range top {
		if k != "policies" {
			return nil, fmt.Errorf(`policy document: unknown key %q; the document is {"policies": {"<prompt>": <policy>, ...}}`, k)
		}
	}
	if top["policies"] == nil {
		return map[string]judge.Policy{}, nil
	}
	byPrompt, ok := top["policies"].(map[string]any)
	if !ok {
		return nil, errors.New(`policy document: "policies" must map prompt names to policies`)
	}
	out := make(map[string]judge.Policy, len(byPrompt))
	for prompt, item := range byPrompt {
		if prompt == "" {
			return nil, errors.New("policy document: a prompt name is empty")
		}
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy of prompt %q is not an object", prompt)
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("policy of prompt %q cannot be expressed as JSON: %w", prompt, err)
		}
		out[prompt] = judge.Policy{Prompt: prompt, Document: raw}
	}
	return out, nil
}

// Loader fetches the raw policy document.
type Loader interface {
	Load(ctx context.Context) ([]byte, error)
}

// FileLoader reads a local file.
type FileLoader struct{ Path string }

// Load reads the file.
func (f FileLoader) Load(context.Context) ([]byte, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readBounded(fh)
}

// HTTPLoader GETs a URL.
type HTTPLoader struct {
	Client *http.Client
	URL    string
}

// Load GETs the URL and returns the body of a 200 answer.
func (h HTTPLoader) Load(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, http.NoBody)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("GET %s answered %s", h.URL, resp.Status)
	}
	return readBounded(resp.Body)
}

func readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("policy document exceeds %d bytes", maxDocumentBytes)
	}
	return data, nil
}

// Store holds the policies in force and refreshes them in the background.
type Store struct {
	loader    Loader
	interval  time.Duration
	logger    *zap.Logger
	onFailure func()

	current atomic.Pointer[map[string]judge.Policy]
	loaded  atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewStore returns a store that loads with loader every interval once started. onFailure is
// called after each failed load or parse.
func NewStore(loader Loader, interval time.Duration, logger *zap.Logger, onFailure func()) *Store {
	s := &Store{loader: loader, interval: interval, logger: logger, onFailure: onFailure}
	empty := map[string]judge.Policy{}
	s.current.Store(&empty)
	return s
}

// Get returns the policy of prompt, if one is loaded.
func (s *Store) Get(prompt string) (judge.Policy, bool) {
	p, ok := (*s.current.Load())[prompt]
	return p, ok
}

// Len returns the number of loaded policies.
func (s *Store) Len() int { return len(*s.current.Load()) }

// Loaded reports whether at least one load succeeded.
func (s *Store) Loaded() bool { return s.loaded.Load() }

// Refresh loads once, replacing the policies in force on success.
func (s *Store) Refresh(ctx context.Context) error {
	data, err := s.loader.Load(ctx)
	if err == nil {
		var set map[string]judge.Policy
		if set, err = Parse(data); err == nil {
			s.current.Store(&set)
			s.loaded.Store(true)
			return nil
		}
	}
	if s.onFailure != nil {
		s.onFailure()
	}
	return err
}

// Start loads now and then every interval, on a background goroutine, until Shutdown.
func (s *Store) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ticker := time.NewTicker(s.interval)
		defer ticker.Stop()
		for {
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("Cannot refresh rollout policies; the previous ones stay in force", zap.Error(err))
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// Shutdown stops the refresh goroutine and waits for it.
func (s *Store) Shutdown() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}
