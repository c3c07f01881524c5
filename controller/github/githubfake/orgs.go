package githubfake

import (
	"net/http"
	"strings"
)

// AddOrgMember makes login a member of org.
func (f *Fake) AddOrgMember(org, login string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.members == nil {
		f.members = map[string]bool{}
	}
	f.members[strings.ToLower(org+"/"+login)] = true
}

// AddTeamMember makes login an active member of org's team (by slug), and
// of org.
func (f *Fake) AddTeamMember(org, team, login string) {
	f.AddOrgMember(org, login)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[strings.ToLower(org+"/"+team+"/"+login)] = true
}

// orgMember is GET /orgs/{org}/members/{username}: 204 for a member, 404
// otherwise.
func (f *Fake) orgMember(w http.ResponseWriter, org, login string) {
	f.mu.Lock()
	ok := f.members[strings.ToLower(org+"/"+login)]
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "User does not exist or is not a member of the organization")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// teamMembership is GET /orgs/{org}/teams/{team_slug}/memberships/{username}.
func (f *Fake) teamMembership(w http.ResponseWriter, org, team, login string) {
	f.mu.Lock()
	ok := f.members[strings.ToLower(org+"/"+team+"/"+login)]
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url":   f.URL + "orgs/" + org + "/teams/" + team + "/memberships/" + login,
		"role":  "member",
		"state": "active",
	})
}
