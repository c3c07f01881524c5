package dashboard

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/access"
)

// TokenAdmin creates, lists and revokes bypass tokens and share links
// (*access.Store).
type TokenAdmin interface {
	List(repo string) []access.Token
	Create(ctx context.Context, n access.NewToken) (access.Token, string, error)
	Revoke(ctx context.Context, id string) (access.Token, error)
}

// accessData is what the access page renders.
type accessData struct {
	Available bool
	Tokens    []tokenRow
	// Created is the token just made, with its secret, shown this once.
	Created *createdToken
	Error   string
	Revoked string
}

type tokenRow struct {
	access.Token
	State string // live, expired, revoked
}

type createdToken struct {
	Token  access.Token
	Secret string
	Header string
	Param  string
}

func (s *Server) accessPage(w http.ResponseWriter, r *http.Request, p principal) {
	d := s.accessData()
	if id := r.URL.Query().Get("revoked"); id != "" && len(id) <= 32 {
		d.Revoked = id
	}
	s.render(w, r, p, http.StatusOK, "access", "Access", d)
}

func (s *Server) accessData() accessData {
	d := accessData{Available: s.opts.Grants != nil}
	if !d.Available {
		return d
	}
	now := s.opts.Now()
	for _, t := range s.opts.Grants.List("") {
		st := "live"
		switch {
		case !t.Revoked.IsZero():
			st = "revoked"
		case !t.Expires.IsZero() && !now.Before(t.Expires):
			st = "expired"
		}
		d.Tokens = append(d.Tokens, tokenRow{Token: t, State: st})
	}
	return d
}

// accessCreate makes a token from the form and shows its secret once.
func (s *Server) accessCreate(w http.ResponseWriter, r *http.Request, p principal) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !s.auth.checkCSRF(p, r.PostFormValue("csrf")) {
		s.errorPage(w, r, p, http.StatusForbidden, "Form expired", "This form did not carry a valid security token. Reload the page and try again.")
		return
	}
	if s.opts.Grants == nil {
		s.errorPage(w, r, p, http.StatusNotFound, "Not available", "Tokens and share links need a repository with private previews.")
		return
	}
	n := access.NewToken{Kind: r.PostFormValue("kind"), Repo: strings.TrimSpace(r.PostFormValue("repo")), Note: r.PostFormValue("note"), CreatedBy: "dashboard"}
	if p.user != "" {
		n.CreatedBy = "dashboard:" + p.user
	}
	d := s.accessData()
	status := http.StatusBadRequest
	var err error
	if v := strings.TrimSpace(r.PostFormValue("pr")); v != "" {
		if n.PR, err = strconv.Atoi(v); err != nil {
			d.Error = "pull request: not a number"
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("ttl")); v != "" && d.Error == "" {
		if n.TTL, err = time.ParseDuration(v); err != nil {
			d.Error = "lifetime: " + err.Error()
		}
	}
	if d.Error == "" {
		t, secret, err := s.opts.Grants.Create(r.Context(), n)
		if err != nil {
			d.Error = err.Error()
		} else {
			status = http.StatusCreated
			s.log.Info("access token created from the dashboard", "id", t.ID, "kind", t.Kind, "repo", t.Repo, "pr", t.PR, "by", n.CreatedBy)
			d = s.accessData()
			d.Created = &createdToken{Token: t, Secret: secret, Header: access.BypassHeader, Param: access.BypassParam}
		}
	}
	s.render(w, r, p, status, "access", "Access", d)
}

// accessRevoke ends a token at once.
func (s *Server) accessRevoke(w http.ResponseWriter, r *http.Request, p principal) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !s.auth.checkCSRF(p, r.PostFormValue("csrf")) {
		s.errorPage(w, r, p, http.StatusForbidden, "Form expired", "This form did not carry a valid security token. Reload the page and try again.")
		return
	}
	if s.opts.Grants == nil {
		s.errorPage(w, r, p, http.StatusNotFound, "Not available", "Tokens and share links need a repository with private previews.")
		return
	}
	id := r.PathValue("id")
	if _, err := s.opts.Grants.Revoke(r.Context(), id); err != nil {
		s.errorPage(w, r, p, http.StatusNotFound, "Could not revoke", err.Error())
		return
	}
	s.log.Info("access token revoked from the dashboard", "id", id, "by", p.user)
	http.Redirect(w, r, s.base+"access?revoked="+id, http.StatusSeeOther)
}
