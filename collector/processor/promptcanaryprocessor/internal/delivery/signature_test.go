// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignMatchesStandardWebhooksConstruction(t *testing.T) {
	key := []byte("0123456789abcdef")
	body := []byte(`{"a":1}`)

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_1.1700000000." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))

	assert.Equal(t, want, Sign(key, "msg_1", 1700000000, body))
	assert.True(t, Verify(key, "msg_1", 1700000000, body, "v1,bogus "+want))
	assert.False(t, Verify(key, "msg_1", 1700000001, body, want), "timestamp is signed")
	assert.False(t, Verify(key, "msg_2", 1700000000, body, want), "id is signed")
	assert.False(t, Verify(key, "msg_1", 1700000000, []byte(`{"a":2}`), want), "body is signed")
	assert.False(t, Verify([]byte("another key 0123"), "msg_1", 1700000000, body, want))
}

func TestDecodeSecret(t *testing.T) {
	key, err := DecodeSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("raw key bytes!!!")))
	require.NoError(t, err)
	assert.Equal(t, []byte("raw key bytes!!!"), key)

	key, err = DecodeSecret("plain-secret-value")
	require.NoError(t, err)
	assert.Equal(t, []byte("plain-secret-value"), key)

	_, err = DecodeSecret("whsec_***not base64***")
	require.ErrorContains(t, err, "standard base64")
}
