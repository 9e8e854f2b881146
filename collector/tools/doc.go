// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// Package tools pins the code generators of the collector modules in this module's go.mod (its
// tool directives), apart from the modules they generate code for. Run one with
// `go tool -modfile=<path to collector/tools/go.mod> mdatagen metadata.yaml`, as the processor's
// generate.go does.
package tools
