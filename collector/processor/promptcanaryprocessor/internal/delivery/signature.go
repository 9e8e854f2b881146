// Copyright The otel-prompt-canary Authors
// SPDX-License-Identifier: Apache-2.0

package delivery // import "github.com/otel-prompt-canary/otel-prompt-canary/collector/processor/promptcanaryprocessor/internal/delivery"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret whose key is the base64 text after it.
const secretPrefix = "whsec_"

// DecodeSecret returns the HMAC key of a configured secret: for "whsec_<base64>" (the Standard
// Webhooks convention) the decoded bytes, otherwise the UTF-8 bytes of the secret itself.
func DecodeSecret(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, errors.New(`a secret starting with "whsec_" must continue with standard base64`)
		}
		return key, nil
	}
	return []byte(secret), nil
}

// Sign returns the webhook-signature header value for one delivery attempt:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header (a space-separated list of "v1,<base64>" signatures, as
// Standard Webhooks allows) holds a valid signature of id, timestamp and body under key.
func Verify(key []byte, id string, timestamp int64, body []byte, header string) bool {
	want := Sign(key, id, timestamp, body)
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
