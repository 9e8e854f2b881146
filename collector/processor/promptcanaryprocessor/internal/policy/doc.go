// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package policy holds the canary policies the judge applies and where they come from.
//
//   - model.go, parse.go, validate.go: the policy of one prompt (schemas/policy.schema.json),
//     parsed from YAML or JSON with the defaults filled in and validated as the Python engine's
//     load_policy does, so that both engines accept and refuse the same documents;
//   - duration.go: the durations a ramp step's min_duration may be written in (30m, 4h, 1h30m),
//     read to the same seconds as in the Python engine;
//   - document.go: the document that maps prompts to policies and lists the active rollouts
//     with their ramp state, as GET /v1/policies?include=rollouts answers it;
//   - store.go: the policies in force, loaded from the control plane (polled, with ETag) or a
//     local file, and refreshed in the background. A failed refresh keeps the previous set:
//     policies never block spans.
package policy // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/policy"
