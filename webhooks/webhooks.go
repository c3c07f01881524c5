// Package webhooks receives GitHub webhook deliveries (POST /webhooks/github)
// and turns the ones that matter into Events for the controller's queue.
//
// The handler only validates and hands over: it checks the
// X-Hub-Signature-256 HMAC before parsing anything, bounds the body, refuses
// repositories that are not configured, drops redeliveries through a
// DeliveryLog, and passes an Event to an Enqueuer. A delivery carrying a
// user's command (a Journal decides which) is instead written durably
// before it is acknowledged, so that a restart cannot lose it. It never
// talks to Docker or GitHub, and it answers within milliseconds whatever
// the rest of the controller is doing. A delivery it rejects leaves no trace: nothing is
// enqueued and the delivery is not recorded, so GitHub's "Redeliver" button
// works once the cause is fixed.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Path is where the control surface mounts the handler.
const Path = "/webhooks/github"

// Headers GitHub sets on every delivery.
const (
	HeaderEvent     = "X-GitHub-Event"
	HeaderDelivery  = "X-GitHub-Delivery"
	HeaderSignature = "X-Hub-Signature-256"
)

// DefaultMaxBodyBytes is GitHub's cap on a payload (25 MB), taken in MiB so
// that no genuine delivery is refused.
const DefaultMaxBodyBytes = 25 << 20

// maxDeliveryIDLen bounds X-GitHub-Delivery (a GUID, 36 characters).
const maxDeliveryIDLen = 128

// Enqueuer hands events to the controller's work queue.
type Enqueuer interface {
	// Enqueue must not block: it records the event (repeated adds for one
	// PR collapse) and returns. The handler still guards against one that
	// does, see Options.EnqueueWait.
	Enqueue(Event)
}

// EnqueueFunc adapts a function to Enqueuer.
type EnqueueFunc func(Event)

// Enqueue calls f(ev).
func (f EnqueueFunc) Enqueue(ev Event) { f(ev) }

// DeliveryLog remembers the deliveries already acted on, so that a
// redelivery (same X-GitHub-Delivery) is not acted on twice.
type DeliveryLog interface {
	// FirstSeen records id and reports whether it had not been recorded
	// before. Concurrent calls with one id return true at most once. On
	// error nothing is recorded.
	FirstSeen(ctx context.Context, id string) (bool, error)
}

// Journal makes the deliveries that carry a user's command durable before
// they are acknowledged. GitHub never resends a delivery it got a 2xx for,
// so a command held only in memory would be lost to a restart, and the
// delivery log would turn the user's "Redeliver" into a duplicate.
type Journal interface {
	// Journaled reports whether ev carries a command that must outlive the
	// process. It must depend on ev alone: a redelivery takes the same path.
	Journaled(ev Event) bool
	// Record writes ev's command and records its delivery ID in one durable
	// step, then acts on it as Enqueue would (without blocking on anything
	// but that write). It reports whether the delivery was new; on error
	// nothing is recorded, so a redelivery is acted on.
	Record(ctx context.Context, ev Event) (first bool, err error)
}

// Options configures a Handler.
type Options struct {
	// Secrets verify X-Hub-Signature-256; a delivery signed with any of
	// them is accepted (several while a secret is rotated). Required.
	Secrets []string
	// AllowRepo reports whether owner/name is a configured repository.
	// Deliveries naming any other repository are refused with 403.
	// Required. GitHub repository names are case-insensitive; so should
	// this be.
	AllowRepo func(fullName string) bool
	// Deliveries drops redeliveries. Required.
	Deliveries DeliveryLog
	// Enqueuer receives accepted events. Required.
	Enqueuer Enqueuer
	// Journal, if set, takes the events it journals in place of
	// Deliveries and Enqueuer: they are acknowledged only once written.
	Journal Journal
	// Logger receives one line per delivery. Default: discard.
	Logger *slog.Logger
	// Registerer receives the handler's metrics
	// (slipway_webhook_deliveries_total, slipway_webhook_handling_seconds).
	// Default: not registered.
	Registerer prometheus.Registerer
	// MaxBodyBytes bounds a delivery; larger ones get 413. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// EnqueueWait is how long the handler waits for Enqueue to return
	// before answering anyway (the event is then handed over in the
	// background). Default 50ms.
	EnqueueWait time.Duration
	// MaxPendingEnqueues bounds the hand-overs still waiting on a stuck
	// Enqueuer; past it, deliveries get 503 and leave no trace. Default 1024.
	MaxPendingEnqueues int
}

// Handler serves POST /webhooks/github. Build it with NewHandler.
type Handler struct {
	secrets     [][]byte
	allowRepo   func(string) bool
	deliveries  DeliveryLog
	enqueuer    Enqueuer
	journal     Journal
	log         *slog.Logger
	metrics     *metrics
	maxBody     int64
	enqueueWait time.Duration
	// pending holds one token per Enqueue call still running.
	pending chan struct{}
}

// NewHandler checks opts and returns the handler.
func NewHandler(opts Options) (*Handler, error) {
	h := &Handler{
		allowRepo:   opts.AllowRepo,
		deliveries:  opts.Deliveries,
		enqueuer:    opts.Enqueuer,
		journal:     opts.Journal,
		log:         opts.Logger,
		maxBody:     opts.MaxBodyBytes,
		enqueueWait: opts.EnqueueWait,
	}
	for _, s := range opts.Secrets {
		if s != "" {
			h.secrets = append(h.secrets, []byte(s))
		}
	}
	var errs []error
	if len(h.secrets) == 0 {
		errs = append(errs, errors.New("no webhook secret"))
	}
	if h.allowRepo == nil {
		errs = append(errs, errors.New("no AllowRepo function"))
	}
	if h.deliveries == nil {
		errs = append(errs, errors.New("no delivery log"))
	}
	if h.enqueuer == nil {
		errs = append(errs, errors.New("no enqueuer"))
	}
	if opts.MaxBodyBytes < 0 || opts.EnqueueWait < 0 || opts.MaxPendingEnqueues < 0 {
		errs = append(errs, errors.New("negative limit"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("webhook handler: %w", err)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.enqueueWait == 0 {
		h.enqueueWait = 50 * time.Millisecond
	}
	maxPending := opts.MaxPendingEnqueues
	if maxPending == 0 {
		maxPending = 1024
	}
	h.pending = make(chan struct{}, maxPending)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("webhook handler: register metrics: %w", err)
	}
	h.metrics = m
	return h, nil
}

// answer is the handler's reply to one delivery.
type answer struct {
	status  int
	outcome string
	msg     string // plain-text body
	// attrs are logged with the answer.
	attrs []any
}

func reject(status int, outcome, format string, args ...any) answer {
	return answer{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kind := metricKind(r.Header.Get(HeaderEvent))
	a := h.handle(r)
	if a.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	io.WriteString(w, a.msg+"\n")

	h.metrics.deliveries.WithLabelValues(kind, a.outcome).Inc()
	h.metrics.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	level := slog.LevelInfo
	switch {
	case a.status >= 500:
		level = slog.LevelError
	case a.status >= 400:
		level = slog.LevelWarn
	case a.outcome == OutcomeIgnored:
		level = slog.LevelDebug
	}
	attrs := append([]any{
		"delivery", truncate(r.Header.Get(HeaderDelivery), maxDeliveryIDLen),
		"event", kind,
		"status", a.status,
		"outcome", a.outcome,
		"remote", r.RemoteAddr,
	}, a.attrs...)
	h.log.Log(r.Context(), level, "webhook delivery: "+a.msg, attrs...)
}

func (h *Handler) handle(r *http.Request) answer {
	if r.Method != http.MethodPost {
		return reject(http.StatusMethodNotAllowed, OutcomeUnsupported, "method %s not allowed: use POST", r.Method)
	}
	mac, ok := parseSignature(r.Header.Get(HeaderSignature))
	if !ok {
		return reject(http.StatusUnauthorized, OutcomeUnauthorized, "missing or malformed %s header", HeaderSignature)
	}
	if r.ContentLength > h.maxBody {
		return reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "payload of %d bytes is over the limit of %d", r.ContentLength, h.maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.maxBody+1))
	if err != nil {
		return reject(http.StatusBadRequest, OutcomeMalformed, "read body: %v", err)
	}
	if int64(len(body)) > h.maxBody {
		return reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "payload is over the limit of %d bytes", h.maxBody)
	}
	if !validMAC(mac, body, h.secrets) {
		return reject(http.StatusUnauthorized, OutcomeUnauthorized, "signature does not match any configured webhook secret")
	}

	// Verified: from here on the request came from GitHub (or someone
	// holding the secret).
	kind := r.Header.Get(HeaderEvent)
	id := r.Header.Get(HeaderDelivery)
	switch {
	case kind == "":
		return reject(http.StatusBadRequest, OutcomeMalformed, "missing %s header", HeaderEvent)
	case id == "":
		return reject(http.StatusBadRequest, OutcomeMalformed, "missing %s header", HeaderDelivery)
	case len(id) > maxDeliveryIDLen:
		return reject(http.StatusBadRequest, OutcomeMalformed, "%s header is longer than %d characters", HeaderDelivery, maxDeliveryIDLen)
	}
	payload, a, ok := h.payload(r.Header.Get("Content-Type"), body)
	if !ok {
		return a
	}
	v, err := decode(kind, id, payload)
	if err != nil {
		return reject(http.StatusBadRequest, OutcomeMalformed, "%v", err)
	}
	if v.repo != "" && !h.allowRepo(v.repo) {
		return reject(http.StatusForbidden, OutcomeForbidden, "repository %s is not configured", v.repo)
	}
	switch {
	case v.ping:
		return answer{status: http.StatusOK, outcome: OutcomePing, msg: "pong", attrs: []any{"repo", v.repo}}
	case v.event == nil:
		return answer{status: http.StatusAccepted, outcome: OutcomeIgnored, msg: "ignored: " + v.ignored, attrs: []any{"repo", v.repo}}
	}
	return h.hand(r.Context(), *v.event)
}

// payload extracts the JSON document from a verified body.
func (h *Handler) payload(contentType string, body []byte) ([]byte, answer, bool) {
	mediaType := "application/json"
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, reject(http.StatusUnsupportedMediaType, OutcomeUnsupported, "content type %q: %v", contentType, err), false
		}
		mediaType = mt
	}
	switch mediaType {
	case "application/json":
		return body, answer{}, true
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, reject(http.StatusBadRequest, OutcomeMalformed, "form-encoded body: %v", err), false
		}
		p, ok := form["payload"]
		if !ok || len(p) != 1 {
			return nil, reject(http.StatusBadRequest, OutcomeMalformed, "form-encoded body needs exactly one payload field"), false
		}
		return []byte(p[0]), answer{}, true
	}
	return nil, reject(http.StatusUnsupportedMediaType, OutcomeUnsupported, "content type %q: want application/json or application/x-www-form-urlencoded", mediaType), false
}

// hand records the delivery and hands ev to the enqueuer without ever
// blocking on it for longer than enqueueWait.
func (h *Handler) hand(ctx context.Context, ev Event) answer {
	attrs := []any{"repo", ev.Repo, "pr", ev.PR, "action", ev.Action}
	if ev.HeadSHA != "" {
		attrs = append(attrs, "sha", ev.HeadSHA)
	}
	if h.journal != nil && h.journal.Journaled(ev) {
		return h.record(ctx, ev, attrs)
	}
	// Take a hand-over slot first, so that a stuck enqueuer makes us refuse
	// (and GitHub show the failure) before anything is recorded.
	select {
	case h.pending <- struct{}{}:
	default:
		a := reject(http.StatusServiceUnavailable, OutcomeUnavailable, "controller queue is not taking events; redeliver later")
		a.attrs = attrs
		return a
	}
	first, err := h.deliveries.FirstSeen(ctx, ev.DeliveryID)
	if err != nil {
		<-h.pending
		a := reject(http.StatusServiceUnavailable, OutcomeUnavailable, "delivery log: %v", err)
		a.attrs = attrs
		return a
	}
	if !first {
		<-h.pending
		return answer{status: http.StatusOK, outcome: OutcomeDuplicate, msg: "duplicate delivery, already handled", attrs: attrs}
	}
	done := make(chan struct{})
	go func() {
		defer func() { <-h.pending }()
		defer close(done)
		h.enqueuer.Enqueue(ev)
	}()
	t := time.NewTimer(h.enqueueWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		attrs = append(attrs, "enqueue", "slow, handed over in the background")
	}
	return answer{status: http.StatusAccepted, outcome: OutcomeAccepted, msg: "accepted", attrs: attrs}
}

// record hands a journaled event over: it is acknowledged once the journal
// has written it, and refused (leaving no trace) when it could not.
func (h *Handler) record(ctx context.Context, ev Event, attrs []any) answer {
	attrs = append(attrs, "journaled", true)
	first, err := h.journal.Record(ctx, ev)
	if err != nil {
		a := reject(http.StatusServiceUnavailable, OutcomeUnavailable, "record command: %v; redeliver later", err)
		a.attrs = attrs
		return a
	}
	if !first {
		return answer{status: http.StatusOK, outcome: OutcomeDuplicate, msg: "duplicate delivery, already handled", attrs: attrs}
	}
	return answer{status: http.StatusAccepted, outcome: OutcomeAccepted, msg: "accepted", attrs: attrs}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
