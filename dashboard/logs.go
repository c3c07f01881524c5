package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
)

// serviceRE is what a compose service name can be.
var serviceRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$`)

// defaultEventTail is how many lines per container an event stream starts
// with when the client does not say.
const defaultEventTail = "200"

// wantsEventStream reports whether the client asked for server-sent events
// (EventSource does).
func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// parseTail checks the tail parameter: "all" or a line count.
func parseTail(v, def string) (string, error) {
	if v == "" {
		return def, nil
	}
	if v == "all" {
		return v, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1_000_000 {
		return "", fmt.Errorf("tail must be \"all\" or a number of lines, not %s", quote(v))
	}
	return strconv.Itoa(n), nil
}

// logsDenied refuses logs to a viewer of a public dashboard.
func (s *Server) logsDenied(w http.ResponseWriter, r *http.Request) {
	if s.auth.configured() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		s.writeError(w, r, http.StatusUnauthorized, "logs need credentials: send Authorization: Bearer <token>, or sign in")
		return
	}
	s.writeError(w, r, http.StatusForbidden, "logs are not public on this dashboard (dashboard.public_logs)")
}

// apiLogs answers GET /api/v1/environments/{project}/logs: the services'
// logs as text ("web-1 | line"), or as server-sent events when the client
// accepts text/event-stream. Parameters: service, follow=1, tail (lines
// per container; default all for text, 200 for events), timestamps=1.
func (s *Server) apiLogs(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.auth.canReadLogs(p) {
		s.logsDenied(w, r)
		return
	}
	project := r.PathValue("project")
	q := r.URL.Query()
	service := q.Get("service")
	if service != "" && !serviceRE.MatchString(service) {
		s.writeError(w, r, http.StatusBadRequest, "invalid service name "+quote(service))
		return
	}
	sse := wantsEventStream(r)
	def := "all"
	if sse {
		def = defaultEventTail
	}
	tail, err := parseTail(q.Get("tail"), def)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	env, err := s.opts.Engine.Inspect(r.Context(), project)
	if err != nil {
		s.log.Warn("dashboard: inspect for logs", "project", project, "err", err)
		s.writeError(w, r, http.StatusBadGateway, "read the engine: "+err.Error())
		return
	}
	if env == nil {
		s.writeError(w, r, http.StatusNotFound, "no containers of "+quote(project)+" on the engine")
		return
	}
	if service != "" && !slices.ContainsFunc(env.Services, func(sv stack.ServiceState) bool { return sv.Service == service }) {
		s.writeError(w, r, http.StatusNotFound, "no service "+quote(service)+" in "+quote(project))
		return
	}
	if sse {
		s.streamLogEvents(w, r, project, service, tail, cursorFrom(r))
		return
	}
	follow := truthy(q.Get("follow"))
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	var out io.Writer = w
	if follow {
		_ = rc.SetWriteDeadline(time.Time{})
		out = &flushWriter{w: w, rc: rc}
	}
	w.WriteHeader(http.StatusOK)
	if follow {
		_ = rc.Flush()
	}
	err = s.opts.Engine.Logs(r.Context(), project, stack.LogOptions{Service: service, Follow: follow, Tail: tail, Timestamps: truthy(q.Get("timestamps"))}, out)
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("dashboard: stream logs", "project", project, "err", err)
		fmt.Fprintf(out, "[slipway] log stream ended: %v\n", err)
	}
}

// eventWriter writes server-sent events, flushing each; safe for
// concurrent use. After a failed write every later write fails too.
type eventWriter struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	err    error
	onFail func()
}

func (e *eventWriter) raw(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if _, err := io.WriteString(e.w, s); err != nil {
		e.fail(err)
		return err
	}
	if err := e.rc.Flush(); err != nil {
		e.fail(err)
		return err
	}
	return nil
}

func (e *eventWriter) fail(err error) {
	e.err = err
	if e.onFail != nil {
		e.onFail()
	}
}

// event writes one event; data must be a single line (JSON is).
func (e *eventWriter) event(name, id, data string) error {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: " + data + "\n\n")
	return e.raw(b.String())
}

// startEvents sends the event-stream headers and returns a writer plus a
// context that ends when the client goes away or a write fails. A
// keep-alive comment goes out every Options.KeepAlive.
func (s *Server) startEvents(w http.ResponseWriter, r *http.Request) (*eventWriter, context.Context, context.CancelFunc) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // streams outlive any server write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx, cancel := context.WithCancel(r.Context())
	ew := &eventWriter{w: w, rc: rc, onFail: cancel}
	_ = ew.raw("retry: 3000\n\n")
	go func() {
		t := time.NewTicker(s.opts.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ew.raw(": keep-alive\n\n") != nil {
					return
				}
			}
		}
	}()
	return ew, ctx, cancel
}

// logLine is the data of a "line" event.
type logLine struct {
	// Container is the prefix the engine gives: service-number.
	Container string `json:"c"`
	// Time is the engine's timestamp of the line (RFC 3339), if known.
	Time string `json:"t,omitempty"`
	// Message is the line.
	Message string `json:"m"`
}

// streamLogEvents follows the logs as events: "line" events whose id is a
// cursor (the last timestamp per container), so a reconnecting EventSource
// resumes without repeating lines, and an "end" event when the containers
// stop.
func (s *Server) streamLogEvents(w http.ResponseWriter, r *http.Request, project, service, tail string, after cursor) {
	ew, ctx, cancel := s.startEvents(w, r)
	defer cancel()
	lw := &logEventWriter{ev: ew, skip: after, cursor: maps.Clone(after)}
	if lw.cursor == nil {
		lw.cursor = cursor{}
	}
	err := s.opts.Engine.Logs(ctx, project, stack.LogOptions{Service: service, Follow: true, Tail: tail, Timestamps: true}, lw)
	lw.finish()
	if ctx.Err() != nil {
		return // the client went away
	}
	reason := "The containers stopped."
	if err != nil {
		s.log.Warn("dashboard: stream logs", "project", project, "err", err)
		reason = err.Error()
	}
	b, _ := json.Marshal(map[string]string{"reason": reason})
	_ = ew.event("end", "", string(b))
}

// cursor is the last log timestamp sent per container, in Unix
// nanoseconds: "web-1=1700000000000000000,api-1=…" on the wire.
type cursor map[string]int64

const maxCursorLen = 8 << 10

// cursorFrom reads the cursor of a reconnecting client: the
// Last-Event-ID header (EventSource sets it), else the "after" parameter.
func cursorFrom(r *http.Request) cursor {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	return parseCursor(v)
}

func parseCursor(v string) cursor {
	if v == "" || len(v) > maxCursorLen {
		return nil
	}
	c := cursor{}
	for _, part := range strings.Split(v, ",") {
		k, n, ok := strings.Cut(part, "=")
		if !ok || !serviceRE.MatchString(k) {
			continue
		}
		if ts, err := strconv.ParseInt(n, 10, 64); err == nil {
			c[k] = ts
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c
}

func (c cursor) String() string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(c)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(c[k], 10))
	}
	return b.String()
}

// logEventWriter turns the engine's "web-1 | <timestamp> line" output into
// line events, dropping lines a reconnecting client already has.
type logEventWriter struct {
	ev      *eventWriter
	mu      sync.Mutex
	partial []byte
	skip    cursor
	cursor  cursor
}

func (l *logEventWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if err := l.send(line); err != nil {
			return len(p), err
		}
	}
	if len(l.partial) > 1<<20 { // a runaway line without newline
		line := string(l.partial)
		l.partial = l.partial[:0]
		_ = l.send(line)
	}
	return len(p), nil
}

func (l *logEventWriter) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		_ = l.send(string(l.partial))
		l.partial = nil
	}
}

// send emits one line; the caller holds l.mu.
func (l *logEventWriter) send(line string) error {
	ll := parseLogLine(line)
	if ll.ts != 0 {
		if last, ok := l.skip[ll.Container]; ok && ll.ts <= last {
			return nil
		}
		l.cursor[ll.Container] = ll.ts
	}
	b, err := json.Marshal(ll.logLine)
	if err != nil {
		return err
	}
	return l.ev.event("line", l.cursor.String(), string(b))
}

type parsedLine struct {
	logLine
	ts int64
}

// parseLogLine splits "web-1 | 2024-05-01T10:00:00.123456789Z hello". Pure.
func parseLogLine(line string) parsedLine {
	line = strings.TrimRight(line, "\r")
	prefix, rest, ok := strings.Cut(line, " | ")
	if !ok {
		return parsedLine{logLine: logLine{Message: line}}
	}
	out := parsedLine{logLine: logLine{Container: prefix, Message: rest}}
	stamp, msg, _ := strings.Cut(rest, " ")
	if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
		out.Time, out.Message, out.ts = t.UTC().Format(time.RFC3339Nano), msg, t.UnixNano()
	}
	return out
}

// apiBuildLog answers GET /api/v1/environments/{project}/build-log: the
// build log of sha (default the latest build; a unique prefix of at least
// 4 characters will do) as text, as JSON with Accept: application/json,
// or as server-sent events. follow=1 streams a running build until it ends.
func (s *Server) apiBuildLog(w http.ResponseWriter, r *http.Request, p principal) {
	if !s.auth.canReadLogs(p) {
		s.logsDenied(w, r)
		return
	}
	if s.opts.History == nil {
		s.writeError(w, r, http.StatusNotFound, "no build history here: builds are recorded by the controller (not in local mode)")
		return
	}
	project := r.PathValue("project")
	sel, err := s.selectBuildLog(r.Context(), project, r.URL.Query().Get("sha"))
	if err != nil {
		status := statusOf(err)
		if errors.Is(err, errAmbiguous) || errors.Is(err, errBadSHA) {
			status = http.StatusBadRequest
		}
		s.writeError(w, r, status, err.Error())
		return
	}
	follow := truthy(r.URL.Query().Get("follow"))
	switch {
	case wantsEventStream(r):
		from, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		if v := r.URL.Query().Get("from"); v != "" && from == 0 {
			from, _ = strconv.ParseInt(v, 10, 64)
		}
		s.streamBuildLogEvents(w, r, project, sel.SHA, max(from, 0))
	case strings.Contains(r.Header.Get("Accept"), "application/json"):
		bl, err := s.opts.History.BuildLog(r.Context(), project, sel.SHA, 0)
		if err != nil {
			s.writeError(w, r, statusOf(err), err.Error())
			return
		}
		s.writeJSON(w, r, http.StatusOK, buildLogJSON(bl))
	default:
		s.writeBuildLogText(w, r, project, sel.SHA, follow)
	}
}

var (
	errAmbiguous = errors.New("ambiguous SHA prefix")
	errBadSHA    = errors.New("invalid SHA")
)

var shaRE = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)

// selectBuildLog finds the build log of sha (or a prefix), or the latest.
func (s *Server) selectBuildLog(ctx context.Context, project, sha string) (store.BuildLog, error) {
	if sha != "" && !shaRE.MatchString(sha) {
		return store.BuildLog{}, fmt.Errorf("%w %s: want 4 to 64 hex digits", errBadSHA, quote(sha))
	}
	logs, err := s.opts.History.BuildLogs(ctx, project)
	if err != nil {
		return store.BuildLog{}, fmt.Errorf("build logs of %s: %w", project, err)
	}
	if len(logs) == 0 {
		return store.BuildLog{}, fmt.Errorf("%w: %s has no build log", ErrNotFound, project)
	}
	if sha == "" {
		return logs[0], nil
	}
	sha = strings.ToLower(sha)
	var found []store.BuildLog
	for _, l := range logs {
		if l.SHA == sha {
			return l, nil
		}
		if strings.HasPrefix(l.SHA, sha) {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return store.BuildLog{}, fmt.Errorf("%w: no build log of %s at %s", ErrNotFound, project, sha)
	case 1:
		return found[0], nil
	}
	return store.BuildLog{}, fmt.Errorf("%w %s matches %d builds", errAmbiguous, sha, len(found))
}

// BuildLog is the JSON form of one build log.
type BuildLog struct {
	SHA         string    `json:"sha"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	Running     bool      `json:"running"`
	Interrupted bool      `json:"interrupted,omitempty"`
	// Offset is where Data starts in the whole output (earlier output
	// was dropped to bound the log); Size is the whole output's length.
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Data   string `json:"data"`
}

func buildLogJSON(bl store.BuildLog) BuildLog {
	return BuildLog{
		SHA: bl.SHA, Started: bl.Started, Finished: bl.Finished, Running: bl.Running(), Interrupted: bl.Interrupted,
		Offset: bl.Offset, Size: bl.Size, Data: string(bl.Data),
	}
}

// followBuildLog reads the log of sha from byte from on, calling emit with
// each new piece (and gap=true when output before it was dropped), until
// the build finishes or ctx ends.
func (s *Server) followBuildLog(ctx context.Context, project, sha string, from int64, follow bool, emit func(bl store.BuildLog, gap bool) error) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		bl, err := s.opts.History.BuildLog(ctx, project, sha, from)
		if err != nil {
			return err
		}
		gap := bl.Offset > from
		if len(bl.Data) > 0 || gap {
			if err := emit(bl, gap); err != nil {
				return err
			}
		}
		from = bl.Size
		if !follow || !bl.Running() {
			return nil
		}
		t.Reset(s.opts.BuildLogPoll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Server) writeBuildLogText(w http.ResponseWriter, r *http.Request, project, sha string, follow bool) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Slipway-SHA", sha)
	if follow {
		_ = rc.SetWriteDeadline(time.Time{})
	}
	w.WriteHeader(http.StatusOK)
	err := s.followBuildLog(r.Context(), project, sha, 0, follow, func(bl store.BuildLog, gap bool) error {
		if gap {
			if _, err := fmt.Fprintf(w, "[slipway] … %d bytes of earlier output dropped …\n", bl.Offset); err != nil {
				return err
			}
		}
		if _, err := w.Write(bl.Data); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("dashboard: build log", "project", project, "sha", sha, "err", err)
	}
}

// buildChunk is the data of a "log" event of a build-log stream.
type buildChunk struct {
	Text string `json:"text"`
	// Gap is how many bytes before Text were dropped (0: none).
	Gap int64 `json:"gap,omitempty"`
}

// streamBuildLogEvents sends the build log as "log" events whose id is the
// byte offset reached, then an "end" event when the build finished.
func (s *Server) streamBuildLogEvents(w http.ResponseWriter, r *http.Request, project, sha string, from int64) {
	ew, ctx, cancel := s.startEvents(w, r)
	defer cancel()
	var last store.BuildLog
	err := s.followBuildLog(ctx, project, sha, from, true, func(bl store.BuildLog, gap bool) error {
		c := buildChunk{Text: string(bl.Data)}
		if gap {
			c.Gap = bl.Offset - from
		}
		b, _ := json.Marshal(c)
		last = bl
		from = bl.Size
		return ew.event("log", strconv.FormatInt(bl.Size, 10), string(b))
	})
	if ctx.Err() != nil {
		return
	}
	end := map[string]any{"finished": true}
	if err != nil {
		end["error"] = err.Error()
	} else if last.Interrupted {
		end["interrupted"] = true
	}
	b, _ := json.Marshal(end)
	_ = ew.event("end", "", string(b))
}
