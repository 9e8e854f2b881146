// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package promptcanaryprocessor implements the promptcanary processor: it watches LLM call
// spans tagged with a prompt rollout and cohort, and the late evaluation results
// (gen_ai.evaluation.result log records: LLM judge, moderation, feedback) of those calls, keeps
// bounded per-cohort statistics for each rollout, posts them to the prompt-canary control plane
// as periodic reports, and, when a judge reaches a verdict under the rollout's policy, posts a
// signed alert asking for a rollback, a pause or a plain alert. Every span and log record passes
// through unchanged. The traces and logs pipelines that name one promptcanary component share
// one processor: one set of per-cohort windows per rollout, whichever signal a sample came from.
package promptcanaryprocessor // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor"
