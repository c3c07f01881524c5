package config

import (
	"fmt"
	"strings"
)

// Access modes of previews (access and repos[].access).
const (
	AccessPublic   = "public"
	AccessGitHub   = "github"
	AccessPassword = "password"
)

// HostnameRandom is the hostname setting that gives every pull request an
// unguessable host suffix.
const HostnameRandom = "random"

// DefaultOAuthWebURL is where people sign in with GitHub.
const DefaultOAuthWebURL = "https://github.com/"

// RepoAccess is how one repository's previews are opened: the mode and,
// for password, the shared password.
type RepoAccess struct {
	Mode     string
	Password string
	// Team narrows github access: "org" or "org/team"; "" for none.
	Team string
}

// AccessFor returns the access of a repository's previews (owner/name): its
// repos[] entry's, else the global one. An unconfigured repository (local
// mode) has the global access.
func (c *Controller) AccessFor(repo string) RepoAccess {
	a := RepoAccess{Mode: c.Access, Password: c.AccessPassword, Team: c.AccessTeam}
	if r, ok := c.Repo(repo); ok {
		if r.Access != "" {
			a.Mode = r.Access
		}
		if r.AccessTeam != "" {
			a.Team = r.AccessTeam
		}
		if r.AccessPassword != "" {
			a.Password = r.AccessPassword
		}
	}
	if a.Mode == "" {
		a.Mode = AccessPublic
	}
	return a
}

// PublicPreviews returns the repositories whose previews anyone can open
// ("*" for the global default when it is public), for doctor and the
// dashboard to say so.
func (c *Controller) PublicPreviews() []string {
	var out []string
	if c.Access == "" || c.Access == AccessPublic {
		out = append(out, "*")
	}
	for _, r := range c.Repos {
		if c.AccessFor(r.Name).Mode == AccessPublic {
			out = append(out, r.Name)
		}
	}
	return out
}

// validateAccess checks the access keys; it completes the defaults.
func (c *Controller) validateAccess() []error {
	var errs []error
	check := func(field, mode string) {
		switch mode {
		case "", AccessPublic, AccessGitHub, AccessPassword:
		default:
			errs = append(errs, fmt.Errorf("%s %q: want public, github or password", field, mode))
		}
	}
	if c.Access == "" {
		c.Access = AccessPublic
	}
	check("access", c.Access)
	for i, r := range c.Repos {
		check(fmt.Sprintf("repos[%d].access", i), r.Access)
	}
	needGitHub, needPassword := "", ""
	modes := map[string]string{"access": c.Access}
	for i, r := range c.Repos {
		if r.Access != "" {
			modes[fmt.Sprintf("repos[%d].access", i)] = r.Access
		}
	}
	for field, mode := range modes {
		switch mode {
		case AccessGitHub:
			if field == "access" && len(c.Repos) > 0 && !anyInherits(c.Repos) {
				continue // every repository sets its own
			}
			needGitHub = field
		case AccessPassword:
			if field == "access" && len(c.Repos) > 0 && !anyInherits(c.Repos) {
				continue
			}
			pw := c.AccessPassword
			if strings.HasPrefix(field, "repos[") {
				var i int
				fmt.Sscanf(field, "repos[%d]", &i)
				if c.Repos[i].AccessPassword != "" {
					pw = c.Repos[i].AccessPassword
				}
			}
			if pw == "" {
				needPassword = field
			}
		}
	}
	if needPassword != "" {
		errs = append(errs, fmt.Errorf("%s is password but no password is set: set access_password_file (or the repository's access_password_file)", needPassword))
	}
	if needGitHub != "" {
		switch {
		case c.GitHub == nil:
			errs = append(errs, fmt.Errorf("%s is github, which needs a github section with github.oauth", needGitHub))
		case c.GitHub.OAuth.ClientID == "" || c.GitHub.OAuth.ClientSecret == "":
			errs = append(errs, fmt.Errorf("%s is github, which needs github.oauth.client_id and github.oauth.client_secret_file", needGitHub))
		}
	}
	if c.GitHub != nil {
		o := &c.GitHub.OAuth
		if o.WebURL == "" {
			o.WebURL = DefaultOAuthWebURL
		}
	}
	checkTeam := func(field, team string) {
		if team == "" {
			return
		}
		org, t, hasTeam := strings.Cut(team, "/")
		if org == "" || hasTeam && (t == "" || strings.Contains(t, "/")) || strings.ContainsAny(team, " \t?#") {
			errs = append(errs, fmt.Errorf("%s %q: want an organisation (acme) or organisation/team (acme/qa)", field, team))
		}
	}
	checkTeam("access_team", c.AccessTeam)
	for i, r := range c.Repos {
		checkTeam(fmt.Sprintf("repos[%d].access_team", i), r.AccessTeam)
	}
	switch c.Hostname {
	case "", HostnameRandom:
	default:
		errs = append(errs, fmt.Errorf("hostname %q: want random or nothing", c.Hostname))
	}
	return errs
}

// anyInherits reports whether a repository takes the global access.
func anyInherits(repos []RepoPolicy) bool {
	for _, r := range repos {
		if r.Access == "" {
			return true
		}
	}
	return false
}
