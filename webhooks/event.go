package webhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Event kinds, as GitHub names them in X-GitHub-Event.
const (
	KindPing         = "ping"
	KindPullRequest  = "pull_request"
	KindIssueComment = "issue_comment"
)

// Event is one delivery that asks the controller to look at a pull request
// again. It is a hint, never the state: the reconciler reads the PR from
// GitHub before acting on it.
type Event struct {
	// DeliveryID is GitHub's X-GitHub-Delivery GUID (the same on a redelivery).
	DeliveryID string
	// Kind is KindPullRequest or KindIssueComment.
	Kind string
	// Action is the payload's action: opened, synchronize, closed, created, ...
	Action string
	// Repo is the base repository, owner/name, as GitHub spells it.
	Repo string
	// PR is the pull request number.
	PR int
	// HeadSHA is the PR's head commit (pull_request events only; an
	// issue_comment payload does not carry it).
	HeadSHA string
	// HeadRepo is the head repository's owner/name; it differs from Repo for
	// a fork and is empty when GitHub sends head.repo as null (the fork was
	// deleted).
	HeadRepo string
	// Merged tells a merge from a plain close (action closed).
	Merged bool
	// Label is the label added or removed (actions labeled and unlabeled).
	Label string
	// InstallationID is the GitHub App installation that sent the delivery,
	// 0 for a repository webhook.
	InstallationID int64
	// Sender is the login of the user whose action caused the delivery.
	Sender string
	// Comment is the new comment (KindIssueComment only).
	Comment *Comment
	// PrivateRepo is the payload's repository.private: true for a
	// private (or internal) repository, whose comments not everyone reads.
	PrivateRepo bool
}

// Comment is a comment created on a pull request's conversation.
type Comment struct {
	ID     int64
	Body   string
	Author string
}

// pullRequestActions are the pull_request actions that can change what a
// preview should be; every other action is ignored.
var pullRequestActions = map[string]bool{
	"opened":             true,
	"reopened":           true,
	"synchronize":        true,
	"closed":             true,
	"labeled":            true,
	"unlabeled":          true,
	"ready_for_review":   true,
	"converted_to_draft": true,
	"edited":             true,
}

// verdict is what decode made of a verified payload.
type verdict struct {
	// repo is the payload's repository.full_name, "" when it names none
	// (organisation or app-level events).
	repo string
	// ping is set for a ping delivery.
	ping bool
	// ignored explains why the delivery needs no action; "" when event is set.
	ignored string
	// event is the decoded event when the delivery asks for a reconcile.
	event *Event
}

// errMalformed wraps every decode failure; the handler answers 400.
var errMalformed = errors.New("malformed payload")

type repoRef struct {
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

type userRef struct {
	Login string `json:"login"`
}

// envelope holds the fields every event shares.
type envelope struct {
	Action       string   `json:"action"`
	Repository   *repoRef `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender *userRef `json:"sender"`
}

type pullRequestPayload struct {
	envelope
	Number      int `json:"number"`
	PullRequest *struct {
		Number int  `json:"number"`
		Merged bool `json:"merged"`
		Head   struct {
			SHA  string   `json:"sha"`
			Repo *repoRef `json:"repo"`
		} `json:"head"`
	} `json:"pull_request"`
	Label *struct {
		Name string `json:"name"`
	} `json:"label"`
}

type issueCommentPayload struct {
	envelope
	Issue *struct {
		Number int `json:"number"`
		// PullRequest is present (an object of links) only when the issue
		// is a pull request.
		PullRequest *json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	Comment *struct {
		ID   int64    `json:"id"`
		Body string   `json:"body"`
		User *userRef `json:"user"`
	} `json:"comment"`
}

// decode turns a verified JSON payload of event kind into a verdict. It is
// pure; the handler owns every side effect.
func decode(kind, deliveryID string, payload []byte) (verdict, error) {
	switch kind {
	case KindPullRequest:
		return decodePullRequest(deliveryID, payload)
	case KindIssueComment:
		return decodeIssueComment(deliveryID, payload)
	}
	var env envelope
	if err := unmarshal(payload, &env); err != nil {
		return verdict{}, err
	}
	v := verdict{repo: env.repo()}
	if kind == KindPing {
		v.ping = true
		return v, nil
	}
	v.ignored = fmt.Sprintf("event %q is not handled", kind)
	return v, nil
}

func decodePullRequest(deliveryID string, payload []byte) (verdict, error) {
	var p pullRequestPayload
	if err := unmarshal(payload, &p); err != nil {
		return verdict{}, err
	}
	v := verdict{repo: p.repo()}
	if !pullRequestActions[p.Action] {
		v.ignored = fmt.Sprintf("pull_request action %q is not handled", p.Action)
		return v, nil
	}
	switch {
	case v.repo == "":
		return verdict{}, fmt.Errorf("%w: pull_request without repository.full_name", errMalformed)
	case p.PullRequest == nil:
		return verdict{}, fmt.Errorf("%w: pull_request event without pull_request object", errMalformed)
	}
	number := p.PullRequest.Number
	if number == 0 {
		number = p.Number
	}
	if number <= 0 {
		return verdict{}, fmt.Errorf("%w: pull_request without a number", errMalformed)
	}
	if !validSHA(p.PullRequest.Head.SHA) {
		return verdict{}, fmt.Errorf("%w: pull_request.head.sha %q is not a commit SHA", errMalformed, p.PullRequest.Head.SHA)
	}
	ev := &Event{
		DeliveryID:     deliveryID,
		Kind:           KindPullRequest,
		Action:         p.Action,
		Repo:           v.repo,
		PrivateRepo:    p.private(),
		PR:             number,
		HeadSHA:        strings.ToLower(p.PullRequest.Head.SHA),
		Merged:         p.PullRequest.Merged,
		InstallationID: p.installationID(),
		Sender:         p.sender(),
	}
	if r := p.PullRequest.Head.Repo; r != nil {
		ev.HeadRepo = r.FullName
	}
	if p.Action == "labeled" || p.Action == "unlabeled" {
		if p.Label == nil || p.Label.Name == "" {
			return verdict{}, fmt.Errorf("%w: pull_request %s without label.name", errMalformed, p.Action)
		}
		ev.Label = p.Label.Name
	}
	v.event = ev
	return v, nil
}

func decodeIssueComment(deliveryID string, payload []byte) (verdict, error) {
	var p issueCommentPayload
	if err := unmarshal(payload, &p); err != nil {
		return verdict{}, err
	}
	v := verdict{repo: p.repo()}
	if p.Action != "created" {
		v.ignored = fmt.Sprintf("issue_comment action %q is not handled", p.Action)
		return v, nil
	}
	switch {
	case v.repo == "":
		return verdict{}, fmt.Errorf("%w: issue_comment without repository.full_name", errMalformed)
	case p.Issue == nil:
		return verdict{}, fmt.Errorf("%w: issue_comment without issue object", errMalformed)
	}
	if p.Issue.PullRequest == nil || string(*p.Issue.PullRequest) == "null" {
		v.ignored = "comment on an issue, not a pull request"
		return v, nil
	}
	switch {
	case p.Issue.Number <= 0:
		return verdict{}, fmt.Errorf("%w: issue_comment without issue.number", errMalformed)
	case p.Comment == nil || p.Comment.ID <= 0:
		return verdict{}, fmt.Errorf("%w: issue_comment without comment.id", errMalformed)
	case p.Comment.User == nil || p.Comment.User.Login == "":
		return verdict{}, fmt.Errorf("%w: issue_comment without comment.user.login", errMalformed)
	}
	v.event = &Event{
		DeliveryID:     deliveryID,
		Kind:           KindIssueComment,
		Action:         p.Action,
		Repo:           v.repo,
		PrivateRepo:    p.private(),
		PR:             p.Issue.Number,
		InstallationID: p.installationID(),
		Sender:         p.sender(),
		Comment: &Comment{
			ID:     p.Comment.ID,
			Body:   p.Comment.Body,
			Author: p.Comment.User.Login,
		},
	}
	return v, nil
}

func unmarshal(payload []byte, into any) error {
	if err := json.Unmarshal(payload, into); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return nil
}

// private reports the payload's repository.private.
func (e envelope) private() bool { return e.Repository != nil && e.Repository.Private }

func (e envelope) repo() string {
	if e.Repository == nil {
		return ""
	}
	return e.Repository.FullName
}

func (e envelope) installationID() int64 {
	if e.Installation == nil {
		return 0
	}
	return e.Installation.ID
}

func (e envelope) sender() string {
	if e.Sender == nil {
		return ""
	}
	return e.Sender.Login
}

// validSHA accepts a full SHA-1 (40) or SHA-256 (64) commit ID in hex.
func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
