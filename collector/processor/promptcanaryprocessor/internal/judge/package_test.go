// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package judge

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
