package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signaturePrefix starts X-Hub-Signature-256. The SHA-1 X-Hub-Signature
// header GitHub also sends is deliberately not accepted.
const signaturePrefix = "sha256="

// parseSignature decodes an X-Hub-Signature-256 header value into its MAC.
func parseSignature(header string) ([]byte, bool) {
	h, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(h) != 2*sha256.Size {
		return nil, false
	}
	mac, err := hex.DecodeString(h)
	if err != nil {
		return nil, false
	}
	return mac, true
}

// validMAC reports whether mac is the HMAC-SHA256 of body under any of
// secrets. Every secret is tried, so the time taken does not tell which one
// matched; each comparison is constant time.
func validMAC(mac, body []byte, secrets [][]byte) bool {
	ok := 0
	for _, secret := range secrets {
		h := hmac.New(sha256.New, secret)
		h.Write(body)
		if hmac.Equal(h.Sum(nil), mac) {
			ok = 1
		}
	}
	return ok == 1
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body under
// secret. Tests and tools that replay deliveries use it.
func Sign(secret, body []byte) string {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return signaturePrefix + hex.EncodeToString(h.Sum(nil))
}
