package access

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Token kinds.
const (
	// KindBypass opens every preview of a repository, for test runners.
	KindBypass = "bypass"
	// KindShare opens one pull request's previews, for a limited time.
	KindShare = "share"
)

// Token is a bypass token or share link as stored: never its secret, only
// the secret's hash.
type Token struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Repo string `json:"repo"`
	// PR is the pull request a share link opens; 0 for a bypass token.
	PR        int       `json:"pr,omitempty"`
	Note      string    `json:"note,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	Created   time.Time `json:"created"`
	// Expires is when it stops working; zero for a bypass token that lasts
	// until revoked.
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
}

// Opens reports whether the token opens the previews of repo's pull request pr.
func (t Token) Opens(repo string, pr int) bool {
	if !strings.EqualFold(t.Repo, repo) {
		return false
	}
	return t.PR == 0 || t.PR == pr
}

// live reports whether t works at now.
func (t Token) live(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}

// Store keeps tokens in a bbolt file (access.db under state_dir), and every
// live one in memory, so checking a token never touches the disk.
type Store struct {
	db  *bolt.DB
	now func() time.Time

	mu     sync.RWMutex
	byID   map[string]Token
	byHash map[string]string // hash → id
}

var tokensBucket = []byte("tokens")

// TokensFileName is the store's file inside state_dir.
const TokensFileName = "access.db"

// OpenStore opens (creating) the token store at path.
func OpenStore(path string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open access token store %s: %w", path, err)
	}
	s := &Store{db: db, now: now, byID: map[string]Token{}, byHash: map[string]string{}}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(tokensBucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("token %s: %w", k, err)
			}
			s.index(t)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load access tokens: %w", err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) index(t Token) {
	s.byID[t.ID] = t
	s.byHash[t.Hash] = t.ID
}

// NewToken is what Create makes.
type NewToken struct {
	Kind      string
	Repo      string
	PR        int
	TTL       time.Duration // 0: a bypass token that lasts until revoked
	Note      string
	CreatedBy string
}

// MaxShareTTL bounds a share link's life.
const MaxShareTTL = 30 * 24 * time.Hour

// Create stores a new token and returns it with its secret, which is shown
// once and never stored.
func (s *Store) Create(ctx context.Context, n NewToken) (Token, string, error) {
	switch {
	case n.Kind != KindBypass && n.Kind != KindShare:
		return Token{}, "", fmt.Errorf("token kind %q: want bypass or share", n.Kind)
	case !strings.Contains(n.Repo, "/"):
		return Token{}, "", fmt.Errorf("token repository %q: want owner/name", n.Repo)
	case n.Kind == KindShare && n.PR <= 0:
		return Token{}, "", errors.New("a share link needs a pull request number")
	case n.Kind == KindShare && (n.TTL <= 0 || n.TTL > MaxShareTTL):
		return Token{}, "", fmt.Errorf("share link lifetime %s: want more than 0 and at most %s", n.TTL, MaxShareTTL)
	case n.TTL < 0:
		return Token{}, "", fmt.Errorf("token lifetime %s is negative", n.TTL)
	}
	if n.Kind == KindBypass {
		n.PR = 0
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, "", err
	}
	secret := "swp_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	idb := make([]byte, 6)
	if _, err := rand.Read(idb); err != nil {
		return Token{}, "", err
	}
	now := s.now()
	t := Token{ID: hex.EncodeToString(idb), Kind: n.Kind, Repo: n.Repo, PR: n.PR, Note: n.Note, CreatedBy: n.CreatedBy,
		Created: now.UTC(), Hash: hashSecret(secret)}
	if n.TTL > 0 {
		t.Expires = now.Add(n.TTL).UTC()
	}
	if err := s.put(t); err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

func (s *Store) put(t Token) error {
	b, _ := json.Marshal(t)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(tokensBucket).Put([]byte(t.ID), b) }); err != nil {
		return fmt.Errorf("store access token: %w", err)
	}
	s.mu.Lock()
	s.index(t)
	s.mu.Unlock()
	return nil
}

// ErrNoToken is returned for an unknown token ID.
var ErrNoToken = errors.New("no such token")

// Revoke ends a token at once.
func (s *Store) Revoke(ctx context.Context, id string) (Token, error) {
	s.mu.RLock()
	t, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return Token{}, fmt.Errorf("revoke token %q: %w", id, ErrNoToken)
	}
	if t.Revoked.IsZero() {
		t.Revoked = s.now().UTC()
		if err := s.put(t); err != nil {
			return Token{}, err
		}
	}
	return t, nil
}

// List returns the tokens of repo ("" for every repository), newest first.
func (s *Store) List(repo string) []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Token
	for _, t := range s.byID {
		if repo == "" || strings.EqualFold(t.Repo, repo) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Redeem returns the live token whose secret is given.
func (s *Store) Redeem(secret string, now time.Time) (Token, bool) {
	h := hashSecret(secret)
	s.mu.RLock()
	id, ok := s.byHash[h]
	t := s.byID[id]
	s.mu.RUnlock()
	if !ok || !t.live(now) {
		return Token{}, false
	}
	return t, true
}

// Live returns the token with this ID while it works.
func (s *Store) Live(id string, now time.Time) (Token, bool) {
	s.mu.RLock()
	t, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok || !t.live(now) {
		return Token{}, false
	}
	return t, true
}
