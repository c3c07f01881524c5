package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Registries with token authentication (distribution's `auth: token`,
// Docker Hub, Harbor) answer their API with 401 and a challenge,
//
//	WWW-Authenticate: Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:delete"
//
// and want the request again with a token that the realm issues for the
// service and scope, to a client logging in with the registry's user and
// password (distribution's token authentication specification).

// bearerChallenge is the parameters of a Bearer challenge.
type bearerChallenge struct {
	Realm, Service, Scope string
}

// parseBearer reads a WWW-Authenticate header's Bearer challenge; ok is
// false for any other scheme or a challenge without a realm. Quoted
// values may hold commas (a scope with several actions). Pure.
func parseBearer(header string) (bearerChallenge, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return bearerChallenge{}, false
	}
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, found := strings.Cut(rest, "=")
		if !found {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				return bearerChallenge{}, false
			}
			val, rest = after[1:1+end], after[2+end:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
		}
		params[key] = val
		rest = strings.TrimLeft(rest, ", ")
	}
	if params["realm"] == "" {
		return bearerChallenge{}, false
	}
	return bearerChallenge{Realm: params["realm"], Service: params["service"], Scope: params["scope"]}, true
}

// tokenURL is where the token of challenge c is asked for. Credentials go
// there only over https or to a loopback address: the realm is named by
// the registry's answer, and the password must not cross a network in
// clear. Pure.
func tokenURL(c bearerChallenge, withCredentials bool) (string, error) {
	u, err := url.Parse(c.Realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("token realm %q is not an http(s) URL", c.Realm)
	}
	if withCredentials && u.Scheme != "https" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("token realm %s is plain http: the registry's password is only sent over https", c.Realm)
		}
	}
	q := u.Query()
	if c.Service != "" {
		q.Set("service", c.Service)
	}
	if c.Scope != "" {
		q.Set("scope", c.Scope)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// token asks the challenge's realm for a token, logging in with the
// registry's user and password when it has them.
func (r *Registry) token(ctx context.Context, c bearerChallenge) (string, error) {
	target, err := tokenURL(c, r.User != "")
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Password)
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("get a registry token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get a registry token from %s: %s", c.Realm, resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("read the registry token from %s: %w", c.Realm, err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", errors.New("the registry's token realm " + c.Realm + " returned no token")
	}
	return body.Token, nil
}

func (r *Registry) client() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	return http.DefaultClient
}
