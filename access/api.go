package access

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// TokensPath is the API of bypass tokens and share links on the control
// surface: GET lists, POST creates (the answer holds the secret, shown
// once), DELETE TokensPath/{id} revokes.
const TokensPath = "/api/v1/access/tokens"

// API serves TokensPath for operators: callers present the dashboard's
// bearer token.
type API struct {
	Store *Store
	// Token is the dashboard token; "" disables the API (403).
	Token string
	// Public reports whether a repository's previews are public (a token
	// for them would be useless).
	Public func(repo string) bool
	// Configured reports whether Slipway serves the repository.
	Configured func(repo string) bool
	Logger     *slog.Logger
}

// Register adds the API to the control surface's mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+TokensPath, a.auth(a.list))
	mux.HandleFunc("POST "+TokensPath, a.auth(a.create))
	mux.HandleFunc("DELETE "+TokensPath+"/{id}", a.auth(a.revoke))
}

// CreateRequest is the body of POST TokensPath.
type CreateRequest struct {
	Kind string `json:"kind"` // bypass or share
	Repo string `json:"repo"`
	PR   int    `json:"pr,omitempty"`
	// TTL is a Go duration ("48h"); "" for a bypass token that lasts until revoked.
	TTL       string `json:"ttl,omitempty"`
	Note      string `json:"note,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// Created is the answer to POST TokensPath: the token and, once, its secret.
type Created struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

func (a *API) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if a.Token == "" || a.Store == nil {
			apiError(w, http.StatusForbidden, "the access token API needs dashboard.token and a repository with private previews")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
			apiError(w, http.StatusUnauthorized, "a valid dashboard bearer token is required")
			return
		}
		next(w, r)
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"tokens": a.Store.List(r.URL.Query().Get("repo"))})
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var in CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if a.Configured != nil && !a.Configured(in.Repo) {
		apiError(w, http.StatusBadRequest, "repo "+in.Repo+": not a repository this Slipway serves")
		return
	}
	if a.Public != nil && a.Public(in.Repo) {
		apiError(w, http.StatusBadRequest, "repo "+in.Repo+": its previews are public, a token would open nothing")
		return
	}
	var ttl time.Duration
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(in.TTL); err != nil {
			apiError(w, http.StatusBadRequest, "ttl: "+err.Error())
			return
		}
	}
	if in.CreatedBy == "" {
		in.CreatedBy = "api"
	}
	t, secret, err := a.Store.Create(r.Context(), NewToken{Kind: in.Kind, Repo: in.Repo, PR: in.PR, TTL: ttl, Note: in.Note, CreatedBy: in.CreatedBy})
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if a.Logger != nil {
		a.Logger.Info("access token created", "id", t.ID, "kind", t.Kind, "repo", t.Repo, "pr", t.PR, "by", t.CreatedBy)
	}
	writeJSON(w, http.StatusCreated, Created{Token: t, Secret: secret})
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	t, err := a.Store.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNoToken) {
		apiError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if a.Logger != nil {
		a.Logger.Info("access token revoked", "id", t.ID, "repo", t.Repo)
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": t})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
