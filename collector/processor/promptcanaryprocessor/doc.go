// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package promptcanaryprocessor implements the promptcanary processor: it watches LLM call
// spans tagged with a prompt rollout and cohort, keeps bounded per-cohort statistics for each
// rollout, posts them to the prompt-canary control plane as periodic reports, and, when a
// judge reaches a verdict under the rollout's policy, posts a signed alert asking for a
// rollback, a pause or a plain alert. Every span passes through unchanged.
package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"
