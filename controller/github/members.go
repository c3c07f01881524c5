package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Member reports whether user is a member of org (team "") or an active
// member of org's team (by slug), asked with the credentials Slipway uses
// for repo (its installation, for a GitHub App).
func (c *Client) Member(ctx context.Context, repo Repo, org, team, user string) (bool, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return false, err
	}
	path := fmt.Sprintf("orgs/%s/members/%s", url.PathEscape(org), url.PathEscape(user))
	if team != "" {
		path = fmt.Sprintf("orgs/%s/teams/%s/memberships/%s", url.PathEscape(org), url.PathEscape(team), url.PathEscape(user))
	}
	req, err := g.NewRequest("GET", path, nil)
	if err != nil {
		return false, err
	}
	var ans struct {
		State string `json:"state"`
	}
	resp, err := g.Do(ctx, req, &ans)
	if err != nil {
		if IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("membership of %s in %s: %w", user, path, err)
	}
	if team != "" {
		return ans.State == "active", nil
	}
	// 204: a member. (302 means the caller may not see private members.)
	return resp.StatusCode == http.StatusNoContent, nil
}
