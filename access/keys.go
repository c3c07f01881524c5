package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Keyring holds the keys that sign Slipway's access cookies, newest first.
// The newest signs; every key kept verifies, so cookies signed before a
// rotation stay valid until they expire.
type Keyring struct {
	keys []signingKey
}

type signingKey struct {
	ID      string    `json:"id"`
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
}

// NewKeyring returns a keyring of the given secrets, the first signing.
// Each secret must be at least 32 bytes.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("keyring: no key")
	}
	k := &Keyring{}
	for i, s := range secrets {
		if len(s) < 32 {
			return nil, fmt.Errorf("keyring: key %d is %d bytes, want at least 32", i, len(s))
		}
		k.keys = append(k.keys, signingKey{ID: keyID(s), Secret: s})
	}
	return k, nil
}

// keyID names a key in the cookies it signs without revealing it.
func keyID(secret []byte) string {
	sum := sha256.Sum256(append([]byte("slipway access key id\x00"), secret...))
	return hex.EncodeToString(sum[:4])
}

// LoadKeyring reads the keyring kept at path, creating it when missing, and
// rotates it: when the newest key is older than rotateAfter, a new key
// signs from now on; keys older than rotateAfter+keep (the longest a
// cookie they signed can live) are dropped. The file is written 0600.
func LoadKeyring(path string, now time.Time, rotateAfter, keep time.Duration) (*Keyring, error) {
	var keys []signingKey
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &keys); err != nil {
			return nil, fmt.Errorf("read access keys %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("read access keys %s: %w", path, err)
	}
	rotated, changed, err := rotate(keys, now, rotateAfter, keep)
	if err != nil {
		return nil, err
	}
	if changed {
		out, _ := json.Marshal(rotated)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("write access keys: %w", err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, out, 0o600); err != nil {
			return nil, fmt.Errorf("write access keys: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("write access keys: %w", err)
		}
	}
	return &Keyring{keys: rotated}, nil
}

// rotate returns keys with a new one first when the newest is older than
// rotateAfter (or there is none), without the keys past rotateAfter+keep.
func rotate(keys []signingKey, now time.Time, rotateAfter, keep time.Duration) ([]signingKey, bool, error) {
	var out []signingKey
	changed := false
	for _, k := range keys {
		if len(k.Secret) < 32 {
			changed = true
			continue
		}
		if len(out) > 0 && now.Sub(k.Created) > rotateAfter+keep {
			changed = true // past any cookie it signed; the newest is always kept until replaced
			continue
		}
		k.ID = keyID(k.Secret)
		out = append(out, k)
	}
	if len(out) == 0 || now.Sub(out[0].Created) >= rotateAfter {
		s := make([]byte, 32)
		if _, err := rand.Read(s); err != nil {
			return nil, false, fmt.Errorf("make access key: %w", err)
		}
		out = append([]signingKey{{ID: keyID(s), Secret: s, Created: now}}, out...)
		changed = true
	}
	return out, changed, nil
}

// sum is the MAC of a cookie's payload, bound to the cookie's name so a
// cookie of one kind never passes for another.
func (k signingKey) sum(name, payload string) []byte {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// seal signs c for a cookie named name: "<key id>.<payload>.<mac>".
func (k *Keyring) seal(name string, c claims) string {
	key := k.keys[0]
	body, _ := json.Marshal(c)
	payload := key.ID + "." + b64.EncodeToString(body)
	return payload + "." + b64.EncodeToString(key.sum(name, payload))
}

// open verifies a cookie value sealed for name and returns its claims; ok
// is false for anything forged, tampered with, signed by an unknown key,
// or expired at now.
func (k *Keyring) open(name, value string, now time.Time) (claims, bool) {
	id, rest, ok := strings.Cut(value, ".")
	if !ok {
		return claims{}, false
	}
	body, mac, ok := strings.Cut(rest, ".")
	if !ok {
		return claims{}, false
	}
	for _, key := range k.keys {
		if key.ID != id {
			continue
		}
		got, err := b64.DecodeString(mac)
		if err != nil || !hmac.Equal(got, key.sum(name, id+"."+body)) {
			return claims{}, false
		}
		raw, err := b64.DecodeString(body)
		if err != nil {
			return claims{}, false
		}
		var c claims
		if err := json.Unmarshal(raw, &c); err != nil {
			return claims{}, false
		}
		if c.Expires <= now.Unix() {
			return claims{}, false
		}
		return c, true
	}
	return claims{}, false
}

// derive returns a key for another purpose (password fingerprints, random
// host names) from the newest key.
func (k *Keyring) derive(purpose string) []byte { return k.deriveWith(0, purpose) }

// deriveWith is derive with the i-th key, newest first.
func (k *Keyring) deriveWith(i int, purpose string) []byte {
	m := hmac.New(sha256.New, k.keys[i].Secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
