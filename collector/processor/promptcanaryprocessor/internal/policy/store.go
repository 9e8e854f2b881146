// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxDocumentBytes bounds what one refresh reads, so a misbehaving server cannot exhaust memory.
const maxDocumentBytes = 4 << 20

// Document is one load of the policies document.
type Document struct {
	// Data is the document; empty when NotModified.
	Data []byte
	// ETag identifies this version of the document ("" when the source gives none).
	ETag string
	// NotModified says the document is still the one identified by the ETag passed to Load.
	NotModified bool
}

// Loader fetches the policies document. etag is the ETag of the document in force ("" when
// none): a loader may answer NotModified when it is still current.
type Loader interface {
	Load(ctx context.Context, etag string) (Document, error)
}

// FileLoader reads a local file; its ETag is a hash of the content, so an unchanged file is
// not parsed again.
type FileLoader struct{ Path string }

// Load reads the file.
func (f FileLoader) Load(_ context.Context, etag string) (Document, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return Document{}, err
	}
	defer fh.Close()
	data, err := readBounded(fh)
	if err != nil {
		return Document{}, err
	}
	sum := sha256.Sum256(data)
	tag := hex.EncodeToString(sum[:16])
	if tag == etag {
		return Document{ETag: tag, NotModified: true}, nil
	}
	return Document{Data: data, ETag: tag}, nil
}

// HTTPLoader GETs a URL, with If-None-Match when a document is in force.
type HTTPLoader struct {
	Client *http.Client
	URL    string
}

// Load GETs the URL: the body of a 200 answer, or NotModified on a 304 answer.
func (h HTTPLoader) Load(ctx context.Context, etag string) (Document, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, http.NoBody)
	if err != nil {
		return Document{}, err
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return Document{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Document{ETag: etag, NotModified: true}, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Document{}, fmt.Errorf("GET %s answered %s", h.URL, resp.Status)
	}
	data, err := readBounded(resp.Body)
	if err != nil {
		return Document{}, err
	}
	return Document{Data: data, ETag: resp.Header.Get("ETag")}, nil
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

	current atomic.Pointer[Set]
	loaded  atomic.Bool

	mu   sync.Mutex // serialises refreshes
	etag string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewStore returns a store that loads with loader every interval once started. onFailure is
// called after each failed load or parse.
func NewStore(loader Loader, interval time.Duration, logger *zap.Logger, onFailure func()) *Store {
	s := &Store{loader: loader, interval: interval, logger: logger, onFailure: onFailure}
	s.current.Store(EmptySet())
	return s
}

// Lookup returns what judges the rollout rolloutID of prompt, if anything does.
func (s *Store) Lookup(prompt, rolloutID string) (Target, bool) {
	return s.current.Load().Lookup(prompt, rolloutID)
}

// Len returns how many rollouts (or prompts) the policies in force can judge.
func (s *Store) Len() int { return s.current.Load().Len() }

// Loaded reports whether at least one load succeeded.
func (s *Store) Loaded() bool { return s.loaded.Load() }

// Refresh loads once, replacing the policies in force on success. Entries of the document
// that are invalid are logged and left out; the others apply.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, err := s.loader.Load(ctx, s.etag)
	if err == nil && doc.NotModified {
		s.loaded.Store(true)
		return nil
	}
	if err == nil {
		var set *Set
		var problems []error
		if set, problems, err = ParseDocument(doc.Data); err == nil {
			for _, p := range problems {
				s.logger.Warn("A rollout policy is invalid and is not applied", zap.Error(p))
			}
			s.current.Store(set)
			s.etag = doc.ETag
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
