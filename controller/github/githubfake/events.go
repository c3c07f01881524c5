package githubfake

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IssueEvent is one event on a pull request's issue timeline.
type IssueEvent struct {
	ID int64
	PR int
	// Event is labeled, unlabeled or head_ref_force_pushed.
	Event string
	Actor string
	// Label is the label added or removed.
	Label     string
	CreatedAt time.Time
}

// AddLabel adds a label to a pull request as actor does on GitHub: the
// label is added (once, names are case-insensitive) and a labeled event
// recorded. No webhook is sent: deliver one if the test wants it.
func (f *Fake) AddLabel(fullName string, number int, label, actor string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	x := f.mustPR(r, number)
	if !slices.ContainsFunc(x.Labels, func(l string) bool { return strings.EqualFold(l, label) }) {
		x.Labels = append(x.Labels, label)
	}
	x.updated = now()
	f.addEventLocked(r, IssueEvent{PR: number, Event: "labeled", Actor: actor, Label: label, CreatedAt: x.updated})
}

// RemoveLabel removes a label from a pull request as actor, recording an
// unlabeled event.
func (f *Fake) RemoveLabel(fullName string, number int, label, actor string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	x := f.mustPR(r, number)
	x.Labels = slices.DeleteFunc(x.Labels, func(l string) bool { return strings.EqualFold(l, label) })
	x.updated = now()
	f.addEventLocked(r, IssueEvent{PR: number, Event: "unlabeled", Actor: actor, Label: label, CreatedAt: x.updated})
}

// ForcePush replaces the pull request's head with a new commit holding
// files, as a force push by actor does (GitHub records
// head_ref_force_pushed), and returns the new head SHA.
func (f *Fake) ForcePush(fullName string, number int, files Files, actor string) string {
	sha := f.Push(fullName, number, files)
	f.AddIssueEvent(fullName, IssueEvent{PR: number, Event: "head_ref_force_pushed", Actor: actor})
	return sha
}

// AddIssueEvent records an event as if it had happened at e.CreatedAt
// (default now), e.g. before the controller started. It changes nothing
// else on the pull request.
func (f *Fake) AddIssueEvent(fullName string, e IssueEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.mustRepo(fullName)
	f.mustPR(r, e.PR)
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now()
	}
	f.addEventLocked(r, e)
}

// IssueEvents returns a pull request's events, oldest first.
func (f *Fake) IssueEvents(fullName string, number int) []IssueEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []IssueEvent
	for _, e := range f.mustRepo(fullName).events {
		if e.PR == number {
			out = append(out, *e)
		}
	}
	return out
}

func (f *Fake) addEventLocked(r *repo, e IssueEvent) {
	e.ID = f.id()
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Second)
	r.events = append(r.events, &e)
}

// listIssueEvents serves GET repos/{o}/{r}/issues/{n}/events: oldest first,
// paginated.
func (f *Fake) listIssueEvents(w http.ResponseWriter, r *http.Request, rp *repo, num string) {
	servePRList(w, r, f.api.URL, rp, num, rp.events,
		func(e *IssueEvent) int { return e.PR },
		func(e *IssueEvent) map[string]any { return f.issueEventJSON(rp, e) })
}

// servePRList serves the items of pull request num, one page of them
// rendered, or 404 when there is no such pull request.
func servePRList[T any](w http.ResponseWriter, r *http.Request, base string, rp *repo, num string, items []T, prOf func(T) int, render func(T) map[string]any) {
	n, _ := strconv.Atoi(num)
	if _, ok := rp.prs[n]; !ok {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	var mine []T
	for _, it := range items {
		if prOf(it) == n {
			mine = append(mine, it)
		}
	}
	out := []any{}
	for _, it := range paginate(w, r, base, mine) {
		out = append(out, render(it))
	}
	writeJSON(w, http.StatusOK, out)
}

// issueEventJSON is an issue event as GitHub shows it; label only on
// labeled and unlabeled events.
func (f *Fake) issueEventJSON(r *repo, e *IssueEvent) map[string]any {
	j := map[string]any{
		"id": e.ID, "node_id": fmt.Sprintf("IE_%d", e.ID),
		"url":   f.URL + "repos/" + r.fullName() + "/issues/events/" + strconv.FormatInt(e.ID, 10),
		"actor": f.userJSON(e.Actor), "event": e.Event, "commit_id": nil, "commit_url": nil,
		"created_at": ts(e.CreatedAt), "performed_via_github_app": nil,
	}
	if e.Actor == "" { // a deleted user
		j["actor"] = nil
	}
	if e.Event == "labeled" || e.Event == "unlabeled" {
		j["label"] = map[string]any{"name": e.Label, "color": "ededed"}
	}
	return j
}
