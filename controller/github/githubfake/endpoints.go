package githubfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ---- JSON shapes (field names as in GitHub's REST docs) ----

func (f *Fake) userJSON(login string) map[string]any {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{
		"login": login, "id": loginID(login), "node_id": "U_" + login, "type": typ, "site_admin": false,
		"url": f.URL + "users/" + login, "html_url": "https://github.com/" + login,
		"avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(loginID(login), 10),
	}
}

func loginID(login string) int64 {
	var h int64 = 7
	for _, r := range login {
		h = h*31 + int64(r)
	}
	if h < 0 {
		h = -h
	}
	return h%1_000_000 + 1
}

func (f *Fake) repoJSON(fullName string, id int64, private bool) map[string]any {
	owner, name, _ := strings.Cut(fullName, "/")
	return map[string]any{
		"id": id, "node_id": fmt.Sprintf("R_%d", id), "name": name, "full_name": fullName,
		"owner": f.userJSON(owner), "private": private, "fork": false, "default_branch": "main",
		"url": f.URL + "repos/" + fullName, "html_url": "https://github.com/" + fullName,
	}
}

func (f *Fake) pullJSON(r *repo, p *pr, single bool) map[string]any {
	base := f.repoJSON(r.fullName(), r.id, r.opts.Private)
	headName := p.HeadRepo
	if headName == "" {
		headName = r.fullName()
	}
	var headRepo any = f.repoJSON(headName, r.id+int64(len(headName)), false)
	if headName == r.fullName() {
		headRepo = base
	}
	if r.deletedHeads[p.Number] {
		headRepo = nil
	}
	headOwner, _, _ := strings.Cut(headName, "/")
	labels := []any{}
	for _, l := range p.Labels {
		labels = append(labels, map[string]any{
			"id": loginID(l), "node_id": "LA_" + l, "name": l, "color": "ededed", "default": false,
			"description": nil, "url": f.URL + "repos/" + r.fullName() + "/labels/" + l,
		})
	}
	url := f.URL + "repos/" + r.fullName() + "/pulls/" + strconv.Itoa(p.Number)
	j := map[string]any{
		"url": url, "id": int64(p.Number) + r.id*1000, "node_id": fmt.Sprintf("PR_%d_%d", r.id, p.Number),
		"html_url": "https://github.com/" + r.fullName() + "/pull/" + strconv.Itoa(p.Number),
		"number":   p.Number, "state": p.state, "locked": false, "title": p.Title, "body": nil,
		"user": f.userJSON(p.Author), "labels": labels, "draft": p.Draft,
		"created_at": ts(p.created), "updated_at": ts(p.updated), "closed_at": ts(p.closed), "merged_at": ts(p.mergedAt),
		"merge_commit_sha": nil, "author_association": "CONTRIBUTOR",
		"head": map[string]any{
			"label": headOwner + ":" + p.Branch, "ref": p.Branch, "sha": p.headSHA,
			"user": f.userJSON(headOwner), "repo": headRepo,
		},
		"base": map[string]any{
			"label": r.owner + ":" + p.Base, "ref": p.Base, "sha": strings.Repeat("0", 40),
			"user": f.userJSON(r.owner), "repo": base,
		},
		"commits_url": url + "/commits", "statuses_url": f.URL + "repos/" + r.fullName() + "/statuses/" + p.headSHA,
	}
	if single { // the list endpoint omits these
		j["merged"] = p.merged
		j["mergeable"] = nil
		j["commits"] = p.commits
	}
	return j
}

func (f *Fake) deploymentJSON(r *repo, d *deployment) map[string]any {
	url := f.URL + "repos/" + r.fullName() + "/deployments/" + strconv.FormatInt(d.ID, 10)
	payload := d.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	return map[string]any{
		"url": url, "id": d.ID, "node_id": fmt.Sprintf("DE_%d", d.ID), "sha": d.SHA, "ref": d.Ref, "task": d.Task,
		"payload": payload, "original_environment": d.Environment, "environment": d.Environment,
		"description": nilIfEmpty(d.Description), "creator": f.userJSON(d.Creator),
		"created_at": ts(d.created), "updated_at": ts(d.created),
		"statuses_url": url + "/statuses", "repository_url": f.URL + "repos/" + r.fullName(),
		"transient_environment": d.TransientEnvironment, "production_environment": d.ProductionEnvironment,
	}
}

func (f *Fake) deploymentStatusJSON(r *repo, d *deployment, s DeploymentStatus) map[string]any {
	durl := f.URL + "repos/" + r.fullName() + "/deployments/" + strconv.FormatInt(d.ID, 10)
	return map[string]any{
		"url": durl + "/statuses/" + strconv.FormatInt(s.ID, 10), "id": s.ID, "node_id": fmt.Sprintf("DES_%d", s.ID),
		"state": s.State, "creator": f.userJSON(s.Creator), "description": s.Description,
		"environment": d.Environment, "target_url": s.LogURL, "log_url": s.LogURL,
		"environment_url": s.EnvironmentURL, "created_at": ts(d.created), "updated_at": ts(d.created),
		"deployment_url": durl, "repository_url": f.URL + "repos/" + r.fullName(),
	}
}

func (f *Fake) commitStatusJSON(r *repo, s *commitStatus) map[string]any {
	return map[string]any{
		"url":        f.URL + "repos/" + r.fullName() + "/statuses/" + strconv.FormatInt(s.ID, 10),
		"avatar_url": nil, "id": s.ID, "node_id": fmt.Sprintf("SC_%d", s.ID), "state": s.State,
		"description": nilIfEmpty(s.Description), "target_url": nilIfEmpty(s.TargetURL), "context": s.Context,
		"created_at": ts(s.created), "updated_at": ts(s.created), "creator": f.userJSON(s.Creator),
	}
}

func (f *Fake) commentJSON(r *repo, c *comment) map[string]any {
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID),
		"url":       f.URL + "repos/" + r.fullName() + "/issues/comments/" + strconv.FormatInt(c.ID, 10),
		"html_url":  fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", r.fullName(), c.PR, c.ID),
		"issue_url": f.URL + "repos/" + r.fullName() + "/issues/" + strconv.Itoa(c.PR),
		"body":      c.Body, "user": f.userJSON(c.Author), "author_association": "NONE",
		"created_at": ts(c.created), "updated_at": ts(c.updated),
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---- identity and App ----

func (f *Fake) getUser(w http.ResponseWriter, c caller) {
	if c.app || c.bot {
		apiError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	writeJSON(w, http.StatusOK, f.userJSON(c.login))
}

func (f *Fake) getApp(w http.ResponseWriter, c caller) {
	if !c.app {
		apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	f.mu.Lock()
	app := *f.app
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": app.ID, "slug": app.Slug, "node_id": "A_" + app.Slug, "name": "Slipway (test)",
		"owner": f.userJSON("acme"), "description": "", "external_url": "https://example.com",
		"html_url": "https://github.com/apps/" + app.Slug, "created_at": ts(now()), "updated_at": ts(now()),
		"permissions": appPermissions(), "events": []string{"pull_request", "issue_comment"},
	})
}

func appPermissions() map[string]string {
	return map[string]string{
		"contents": "read", "metadata": "read", "pull_requests": "write", "issues": "write",
		"deployments": "write", "statuses": "write",
	}
}

func (f *Fake) getInstallation(w http.ResponseWriter, c caller, fullName string) {
	if !c.app {
		apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rp, ok := f.repos[strings.ToLower(fullName)]
	if !ok || rp.opts.Installation == 0 {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	id := rp.opts.Installation
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "account": f.userJSON(rp.owner), "app_id": f.app.ID, "app_slug": f.app.Slug,
		"target_id": loginID(rp.owner), "target_type": "Organization", "permissions": appPermissions(),
		"events": []string{"pull_request", "issue_comment"}, "repository_selection": "selected",
		"access_tokens_url": fmt.Sprintf("%sapp/installations/%d/access_tokens", f.URL, id),
		"repositories_url":  f.URL + "installation/repositories",
		"html_url":          fmt.Sprintf("https://github.com/organizations/%s/settings/installations/%d", rp.owner, id),
		"created_at":        ts(now()), "updated_at": ts(now()),
	})
}

func (f *Fake) createAccessToken(w http.ResponseWriter, c caller, idStr string) {
	if !c.app {
		apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	id, _ := strconv.ParseInt(idStr, 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.installs[id] {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	token := "ghs_" + hex.EncodeToString(b)
	expires := time.Now().Add(f.tokenTTL)
	f.instTokens[token] = &instToken{installation: id, expires: expires}
	f.exchanges++
	writeJSON(w, http.StatusCreated, map[string]any{
		"token": token, "expires_at": expires.UTC().Format(time.RFC3339), "permissions": appPermissions(),
		"repository_selection": "selected",
	})
}

// ---- pull requests and permissions ----

func (f *Fake) listPulls(w http.ResponseWriter, r *http.Request, rp *repo) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var prs []*pr
	for _, p := range rp.prs {
		if state == "all" || p.state == state {
			prs = append(prs, p)
		}
	}
	slices.SortFunc(prs, func(a, b *pr) int { return b.Number - a.Number }) // newest first
	out := []any{}
	for _, p := range paginate(w, r, f.api.URL, prs) {
		out = append(out, f.pullJSON(rp, p, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) getPull(w http.ResponseWriter, rp *repo, num string) {
	n, _ := strconv.Atoi(num)
	p, ok := rp.prs[n]
	if !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, f.pullJSON(rp, p, true))
}

// legacyPermission maps a role onto the permission field's four values.
func legacyPermission(p Permission) string {
	switch p {
	case Admin:
		return "admin"
	case Maintain, Write:
		return "write"
	case Triage, Read:
		return "read"
	}
	return "none"
}

func (f *Fake) getPermission(w http.ResponseWriter, rp *repo, user string) {
	role, ok := rp.perms[strings.ToLower(user)]
	if !ok {
		role = Read // anyone can read a public repository
		if rp.opts.Private {
			role = None
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"permission": legacyPermission(role), "role_name": string(role), "user": f.userJSON(user),
	})
}

// ---- deployments ----

func findDeployment(rp *repo, idStr string) *deployment {
	id, _ := strconv.ParseInt(idStr, 10, 64)
	for _, d := range rp.deployments {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (f *Fake) listDeployments(w http.ResponseWriter, r *http.Request, rp *repo) {
	q := r.URL.Query()
	var ds []*deployment
	for i := len(rp.deployments) - 1; i >= 0; i-- { // newest first
		d := rp.deployments[i]
		if q.Get("sha") != "" && q.Get("sha") != d.SHA ||
			q.Get("ref") != "" && q.Get("ref") != d.Ref ||
			q.Get("task") != "" && q.Get("task") != d.Task ||
			q.Get("environment") != "" && q.Get("environment") != d.Environment {
			continue
		}
		ds = append(ds, d)
	}
	out := []any{}
	for _, d := range paginate(w, r, f.api.URL, ds) {
		out = append(out, f.deploymentJSON(rp, d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) createDeployment(w http.ResponseWriter, r *http.Request, rp *repo, c caller) {
	body, ok := decodeBody(w, r)
	if !ok {
		return
	}
	ref, ok := stringField(body, "ref")
	if !ok || ref == "" {
		validationFailed(w, "Deployment", "ref", "missing_field", "ref is required")
		return
	}
	sha := f.resolveRef(rp, ref)
	if sha == "" {
		writeJSON(w, http.StatusConflict, map[string]any{"message": "No ref found for: " + ref, "documentation_url": docsURL})
		return
	}
	// Without required_contexts every status context must be green.
	if ctxs, given := body["required_contexts"]; !given || ctxs == nil {
		latest := map[string]string{}
		for _, s := range rp.statuses[sha] {
			latest[s.Context] = s.State
		}
		for ctx, st := range latest {
			if st != "success" {
				writeJSON(w, http.StatusConflict, map[string]any{
					"message":           fmt.Sprintf("Conflict: Commit status checks failed for %s.", ref),
					"errors":            []any{map[string]any{"contexts": []any{map[string]any{"context": ctx, "state": st}}, "resource": "Deployment", "field": "required_contexts", "code": "invalid"}},
					"documentation_url": docsURL,
				})
				return
			}
		}
	} else if _, isList := ctxs.([]any); !isList {
		validationFailed(w, "Deployment", "required_contexts", "invalid", "required_contexts must be an array")
		return
	}
	env, _ := stringField(body, "environment")
	if env == "" {
		env = "production"
	}
	task, _ := stringField(body, "task")
	if task == "" {
		task = "deploy"
	}
	desc, _ := stringField(body, "description")
	d := &deployment{Deployment: Deployment{
		ID: f.id(), SHA: sha, Ref: ref, Task: task, Environment: env, Description: desc,
		Payload:               body["payload"],
		TransientEnvironment:  boolField(body, "transient_environment", false),
		ProductionEnvironment: boolField(body, "production_environment", env == "production"),
		Creator:               c.login,
	}, created: now()}
	rp.deployments = append(rp.deployments, d)
	writeJSON(w, http.StatusCreated, f.deploymentJSON(rp, d))
}

// resolveRef returns the commit a ref names: a known SHA or a PR branch.
func (f *Fake) resolveRef(rp *repo, ref string) string {
	if _, ok := rp.commits[ref]; ok {
		return ref
	}
	for _, p := range rp.prs {
		if p.Branch == ref || "refs/heads/"+p.Branch == ref || fmt.Sprintf("refs/pull/%d/head", p.Number) == ref {
			return p.headSHA
		}
	}
	return ""
}

var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

func (f *Fake) listDeploymentStatuses(w http.ResponseWriter, r *http.Request, rp *repo, idStr string) {
	d := findDeployment(rp, idStr)
	if d == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	sts := slices.Clone(d.Statuses)
	slices.Reverse(sts) // newest first
	out := []any{}
	for _, s := range paginate(w, r, f.api.URL, sts) {
		out = append(out, f.deploymentStatusJSON(rp, d, s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Fake) createDeploymentStatus(w http.ResponseWriter, r *http.Request, rp *repo, c caller, idStr string) {
	d := findDeployment(rp, idStr)
	if d == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	body, ok := decodeBody(w, r)
	if !ok {
		return
	}
	state, _ := stringField(body, "state")
	if !slices.Contains(deploymentStates, state) {
		validationFailed(w, "DeploymentStatus", "state", "invalid", "state is not included in the list")
		return
	}
	desc, _ := stringField(body, "description")
	if utf8.RuneCountInString(desc) > 140 {
		validationFailed(w, "DeploymentStatus", "description", "invalid", "description is too long (maximum is 140 characters)")
		return
	}
	logURL, _ := stringField(body, "log_url")
	if logURL == "" {
		logURL, _ = stringField(body, "target_url")
	}
	envURL, _ := stringField(body, "environment_url")
	if env, ok := stringField(body, "environment"); ok && env != "" {
		d.Environment = env
	}
	s := DeploymentStatus{ID: f.id(), State: state, Description: desc, EnvironmentURL: envURL, LogURL: logURL, Creator: c.login}
	d.Statuses = append(d.Statuses, s)
	writeJSON(w, http.StatusCreated, f.deploymentStatusJSON(rp, d, s))
}

// ---- commit statuses ----

var commitStates = []string{"error", "failure", "pending", "success"}

func (f *Fake) createCommitStatus(w http.ResponseWriter, r *http.Request, rp *repo, c caller, sha string) {
	if _, ok := rp.commits[sha]; !ok {
		validationFailed(w, "Status", "sha", "invalid", "No commit found for SHA: "+sha)
		return
	}
	body, ok := decodeBody(w, r)
	if !ok {
		return
	}
	state, _ := stringField(body, "state")
	if !slices.Contains(commitStates, state) {
		validationFailed(w, "Status", "state", "invalid", "state is not included in the list")
		return
	}
	desc, _ := stringField(body, "description")
	if utf8.RuneCountInString(desc) > 140 {
		validationFailed(w, "Status", "description", "invalid", "description is too long (maximum is 140 characters)")
		return
	}
	target, _ := stringField(body, "target_url")
	ctx, _ := stringField(body, "context")
	if ctx == "" {
		ctx = "default"
	}
	s := &commitStatus{CommitStatus: CommitStatus{ID: f.id(), State: state, TargetURL: target, Description: desc, Context: ctx, Creator: c.login}, created: now()}
	rp.statuses[sha] = append(rp.statuses[sha], s)
	writeJSON(w, http.StatusCreated, f.commitStatusJSON(rp, s))
}

func (f *Fake) listCommitStatuses(w http.ResponseWriter, r *http.Request, rp *repo, ref string) {
	sha := f.resolveRef(rp, ref)
	sts := slices.Clone(rp.statuses[sha])
	slices.Reverse(sts)
	out := []any{}
	for _, s := range paginate(w, r, f.api.URL, sts) {
		out = append(out, f.commitStatusJSON(rp, s))
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- comments and reactions ----

func findComment(rp *repo, idStr string) *comment {
	id, _ := strconv.ParseInt(idStr, 10, 64)
	for _, c := range rp.comments {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (f *Fake) listComments(w http.ResponseWriter, r *http.Request, rp *repo, num string) {
	servePRList(w, r, f.api.URL, rp, num, sortedComments(rp.comments),
		func(c *comment) int { return c.PR },
		func(c *comment) map[string]any { return f.commentJSON(rp, c) })
}

func commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, ok := decodeBody(w, r)
	if !ok {
		return "", false
	}
	text, ok := stringField(body, "body")
	if !ok || text == "" {
		validationFailed(w, "IssueComment", "body", "missing_field", "body is required")
		return "", false
	}
	if utf8.RuneCountInString(text) > 65536 {
		validationFailed(w, "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)")
		return "", false
	}
	return text, true
}

func (f *Fake) createComment(w http.ResponseWriter, r *http.Request, rp *repo, c caller, num string) {
	n, _ := strconv.Atoi(num)
	if _, ok := rp.prs[n]; !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	text, ok := commentBody(w, r)
	if !ok {
		return
	}
	cm := f.addCommentLocked(rp, n, c.login, text)
	writeJSON(w, http.StatusCreated, f.commentJSON(rp, cm))
}

// mayEdit: the author, or an admin of the repository.
func mayEdit(rp *repo, c caller, cm *comment) bool {
	return strings.EqualFold(cm.Author, c.login) || rp.perms[strings.ToLower(c.login)] == Admin
}

func (f *Fake) editComment(w http.ResponseWriter, r *http.Request, rp *repo, c caller, idStr string) {
	cm := findComment(rp, idStr)
	if cm == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	text, ok := commentBody(w, r)
	if !ok {
		return
	}
	if !mayEdit(rp, c, cm) {
		apiError(w, http.StatusForbidden, "Must have admin rights to Repository.")
		return
	}
	cm.Body, cm.updated = text, now()
	writeJSON(w, http.StatusOK, f.commentJSON(rp, cm))
}

func (f *Fake) deleteComment(w http.ResponseWriter, rp *repo, c caller, idStr string) {
	cm := findComment(rp, idStr)
	if cm == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	if !mayEdit(rp, c, cm) {
		apiError(w, http.StatusForbidden, "Must have admin rights to Repository.")
		return
	}
	rp.comments = slices.DeleteFunc(rp.comments, func(x *comment) bool { return x == cm })
	w.WriteHeader(http.StatusNoContent)
}

var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

func (f *Fake) createReaction(w http.ResponseWriter, r *http.Request, rp *repo, c caller, idStr string) {
	cm := findComment(rp, idStr)
	if cm == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	body, ok := decodeBody(w, r)
	if !ok {
		return
	}
	content, _ := stringField(body, "content")
	if !slices.Contains(reactionContents, content) {
		validationFailed(w, "Reaction", "content", "invalid", "content is not included in the list")
		return
	}
	status := http.StatusCreated
	rx := Reaction{User: c.login, Content: content}
	if slices.Contains(cm.Reactions, rx) {
		status = http.StatusOK // GitHub answers 200 with the existing reaction
	} else {
		cm.Reactions = append(cm.Reactions, rx)
	}
	writeJSON(w, status, map[string]any{
		"id": loginID(c.login + content + idStr), "node_id": "REA_" + content, "user": f.userJSON(c.login),
		"content": content, "created_at": ts(now()),
	})
}
