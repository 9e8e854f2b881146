// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

// mdatagen runs from collector/tools/go.mod, pinned to the Collector release this module
// builds against, so that `go generate ./...` reproduces the committed generated files.

//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml

package promptcanaryprocessor
