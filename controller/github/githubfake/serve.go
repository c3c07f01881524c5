package githubfake

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const docsURL = "https://docs.github.com/rest"

// statusRecorder captures the status code a handler answers.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// record logs each request with its decoded body and the status answered.
// On the API host it first applies queued faults.
func (f *Fake) record(host string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var body map[string]any
		if len(bytes.TrimSpace(raw)) > 0 {
			_ = json.Unmarshal(raw, &body)
		}
		rec := &statusRecorder{ResponseWriter: w}
		if host != "api" || !f.applyFault(rec, r) {
			next.ServeHTTP(rec, r)
		}
		f.mu.Lock()
		f.requests = append(f.requests, Request{
			Host: host, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			Authorization: r.Header.Get("Authorization"), Body: body, Status: rec.status,
		})
		f.mu.Unlock()
	})
}

func (f *Fake) applyFault(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	var ft *Fault
	for i, x := range f.faults {
		if (x.Method == "" || x.Method == r.Method) && strings.HasPrefix(r.URL.Path, x.PathPrefix) {
			ft = x
			if x.Count--; x.Count <= 0 {
				f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			}
			break
		}
	}
	f.mu.Unlock()
	if ft == nil {
		return false
	}
	switch {
	case ft.RateLimitReset > 0:
		reset := time.Now().Add(ft.RateLimitReset)
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Used", "5000")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		writeJSON(w, ft.Status, map[string]any{
			"message":           "API rate limit exceeded for user ID 1.",
			"documentation_url": docsURL + "/overview/rate-limits-for-the-rest-api",
		})
	case ft.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int(ft.RetryAfter.Round(time.Second)/time.Second)))
		writeJSON(w, ft.Status, map[string]any{
			"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"documentation_url": docsURL + "/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
	default:
		writeJSON(w, ft.Status, map[string]any{"message": http.StatusText(ft.Status)})
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": docsURL})
}

func validationFailed(w http.ResponseWriter, resource, field, code, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{map[string]any{"resource": resource, "field": field, "code": code, "message": msg}},
		"documentation_url": docsURL,
	})
}

// caller is who a request authenticates as.
type caller struct {
	login        string
	bot          bool
	installation int64 // for installation tokens
	app          bool  // a valid App JWT
}

// authenticate reads the Authorization header. ok false means it answered 401.
func (f *Fake) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	if h == "" {
		apiError(w, http.StatusUnauthorized, "Requires authentication")
		return caller{}, false
	}
	if !strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token") {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return caller{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if login, ok := f.tokens[cred]; ok {
		return caller{login: login}, true
	}
	if it, ok := f.instTokens[cred]; ok {
		if !time.Now().Before(it.expires) {
			apiError(w, http.StatusUnauthorized, "Bad credentials")
			return caller{}, false
		}
		return caller{login: f.app.BotLogin(), bot: true, installation: it.installation}, true
	}
	if strings.Count(cred, ".") == 2 && f.app != nil {
		if err := verifyJWT(cred, f.app); err != nil {
			apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded: "+err.Error())
			return caller{}, false
		}
		return caller{app: true}, true
	}
	apiError(w, http.StatusUnauthorized, "Bad credentials")
	return caller{}, false
}

// verifyJWT checks an App JWT as GitHub does: RS256 signed by the App's key,
// iss the App ID, issued in the past, expiring in the future and at most
// ten minutes after it was issued.
func verifyJWT(token string, app *App) error {
	parts := strings.Split(token, ".")
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("alg %q, want RS256", header.Alg)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&app.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("signature does not verify")
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if iss != strconv.FormatInt(app.ID, 10) {
		return fmt.Errorf("iss %s is not app %d", iss, app.ID)
	}
	now := time.Now().Unix()
	switch {
	case claims.Iat > now+60:
		return fmt.Errorf("iat is in the future")
	case claims.Exp <= now:
		return fmt.Errorf("expired")
	case claims.Exp-claims.Iat > 600:
		return fmt.Errorf("exp is more than 10 minutes after iat")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serveAPI routes a request. Paths are split by hand: GitHub's
// issues/{n}/comments and issues/comments/{id} overlap as mux patterns.
func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	w.Header().Set("X-RateLimit-Resource", "core")
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	for i := range seg {
		if s, err := url.PathUnescape(seg[i]); err == nil {
			seg[i] = s
		}
	}
	c, ok := f.authenticate(w, r)
	if !ok {
		return
	}
	m := r.Method
	switch {
	case m == "GET" && match(seg, "user"):
		f.getUser(w, c)
	case m == "GET" && match(seg, "app"):
		f.getApp(w, c)
	case m == "POST" && match(seg, "app", "installations", "*", "access_tokens"):
		f.createAccessToken(w, c, seg[2])
	case len(seg) >= 3 && seg[0] == "repos":
		f.serveRepo(w, r, c, seg[1]+"/"+seg[2], seg[3:])
	case m == "GET" && match(seg, "orgs", "*", "members", "*"):
		f.orgMember(w, seg[1], seg[3])
	case m == "GET" && match(seg, "orgs", "*", "teams", "*", "memberships", "*"):
		f.teamMembership(w, seg[1], seg[3], seg[5])
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

// match reports whether seg equals pattern, "*" matching any one segment.
func match(seg []string, pattern ...string) bool {
	if len(seg) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != seg[i] {
			return false
		}
	}
	return true
}

func (f *Fake) serveRepo(w http.ResponseWriter, r *http.Request, c caller, fullName string, seg []string) {
	m := r.Method
	if m == "GET" && match(seg, "installation") {
		f.getInstallation(w, c, fullName)
		return
	}
	if c.app {
		apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rp, ok := f.repos[strings.ToLower(fullName)]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	if c.installation != 0 && rp.opts.Installation != c.installation {
		apiError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	switch {
	case m == "GET" && match(seg, "pulls"):
		f.listPulls(w, r, rp)
	case m == "GET" && match(seg, "pulls", "*"):
		f.getPull(w, rp, seg[1])
	case m == "GET" && match(seg, "collaborators", "*", "permission"):
		f.getPermission(w, rp, seg[1])
	case m == "GET" && len(seg) >= 2 && seg[0] == "tarball":
		f.getTarball(w, rp, strings.Join(seg[1:], "/"))
	case m == "GET" && match(seg, "deployments"):
		f.listDeployments(w, r, rp)
	case m == "POST" && match(seg, "deployments"):
		f.createDeployment(w, r, rp, c)
	case m == "GET" && match(seg, "deployments", "*"):
		if d := findDeployment(rp, seg[1]); d == nil {
			apiError(w, http.StatusNotFound, "Not Found")
		} else {
			writeJSON(w, http.StatusOK, f.deploymentJSON(rp, d))
		}
	case m == "GET" && match(seg, "deployments", "*", "statuses"):
		f.listDeploymentStatuses(w, r, rp, seg[1])
	case m == "POST" && match(seg, "deployments", "*", "statuses"):
		f.createDeploymentStatus(w, r, rp, c, seg[1])
	case m == "POST" && match(seg, "statuses", "*"):
		f.createCommitStatus(w, r, rp, c, seg[1])
	case m == "GET" && match(seg, "commits", "*", "statuses"):
		f.listCommitStatuses(w, r, rp, seg[1])
	case m == "GET" && match(seg, "issues", "comments", "*"):
		if cm := findComment(rp, seg[2]); cm == nil {
			apiError(w, http.StatusNotFound, "Not Found")
		} else {
			writeJSON(w, http.StatusOK, f.commentJSON(rp, cm))
		}
	case m == "PATCH" && match(seg, "issues", "comments", "*"):
		f.editComment(w, r, rp, c, seg[2])
	case m == "DELETE" && match(seg, "issues", "comments", "*"):
		f.deleteComment(w, rp, c, seg[2])
	case m == "POST" && match(seg, "issues", "comments", "*", "reactions"):
		f.createReaction(w, r, rp, c, seg[2])
	case m == "GET" && match(seg, "issues", "*", "events"):
		f.listIssueEvents(w, r, rp, seg[1])
	case m == "GET" && match(seg, "issues", "*", "comments"):
		f.listComments(w, r, rp, seg[1])
	case m == "POST" && match(seg, "issues", "*", "comments"):
		f.createComment(w, r, rp, c, seg[1])
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

// decodeBody decodes a JSON object body; ok false means it answered 400.
func decodeBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body == nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return nil, false
	}
	return body, true
}

// paginate serves GitHub's offset pagination: per_page (default 30, max
// 100), page (from 1), and a Link header with next/prev/first/last.
func paginate[T any](w http.ResponseWriter, r *http.Request, base string, items []T) []T {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (len(items)+per-1)/per)
	link := func(p int, rel string) string {
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("per_page", strconv.Itoa(per))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, strings.TrimSuffix(base, "/"), r.URL.Path, qq.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := min((page-1)*per, len(items))
	return items[start:min(start+per, len(items))]
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func stringField(body map[string]any, key string) (string, bool) {
	v, ok := body[key]
	if !ok || v == nil {
		return "", false
	}
	s, isString := v.(string)
	return s, isString
}

func boolField(body map[string]any, key string, def bool) bool {
	if b, ok := body[key].(bool); ok {
		return b
	}
	return def
}
