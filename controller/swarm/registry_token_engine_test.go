package swarm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A registry with token authentication only (distribution's auth: token):
// doctor's push-and-delete check goes through, the daemon fetching its own
// token for the push and Slipway one with the delete scope for the
// delete; a wrong password is refused. The token realm is the test's (it
// signs tokens with a key the registry trusts); the registry is the real
// one.
func TestTokenAuthRegistry(t *testing.T) {
	dockertest.NeedSwarmTests(t)
	cli := dockertest.Client(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway-test-token-issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "root.crt")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var scopes []string
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "slipway" || p != "s3cret" {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		var access []map[string]any
		for _, s := range r.URL.Query()["scope"] {
			mu.Lock()
			scopes = append(scopes, s)
			mu.Unlock()
			parts := strings.Split(s, ":")
			if len(parts) < 3 {
				continue
			}
			name := strings.Join(parts[1:len(parts)-1], ":")
			access = append(access, map[string]any{"type": parts[0], "name": name, "actions": strings.Split(parts[len(parts)-1], ",")})
		}
		now := time.Now()
		claims := map[string]any{"iss": "slipway-test-issuer", "sub": "slipway", "aud": r.URL.Query().Get("service"),
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": randomHex(8), "access": access}
		tok, err := signES256(key, der, claims)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	addr := dockertest.StartRegistryWith(t, `auth:
  token:
    realm: http://`+l.Addr().String()+`/token
    service: slipway-test-registry
    issuer: slipway-test-issuer
    rootcertbundle: `+bundle+`
`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	wrong := NewEngine(cli, nil, Options{Registry: &Registry{Address: addr, User: "slipway", Password: "wrong"}})
	if err := wrong.opts.Registry.Check(ctx); err == nil {
		t.Error("a wrong password passed the registry check")
	}
	e := NewEngine(cli, nil, Options{Registry: &Registry{Address: addr, User: "slipway", Password: "s3cret"}})
	if err := e.CheckRegistryPush(ctx); err != nil {
		t.Fatalf("push and delete through token authentication: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(scopes, func(s string) bool { return strings.Contains(s, "delete") }) {
		t.Errorf("no token was asked for with a delete scope: %q", scopes)
	}
}

// signES256 makes a JWT signed with key, its certificate in the x5c header.
func signES256(key *ecdsa.PrivateKey, cert []byte, claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]any{"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(cert)}})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}
