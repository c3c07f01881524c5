package github

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sleepRecorder is an injected RetryPolicy.Sleep that returns at once and
// remembers what it was asked to wait.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// scripted answers each request with the next response of a script and
// records the bodies it received.
type scripted struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	bodies  []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	var answer func(w http.ResponseWriter)
	if len(s.answers) > 0 {
		answer, s.answers = s.answers[0], s.answers[1:]
	}
	s.mu.Unlock()
	if answer == nil {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
		return
	}
	answer(w)
}

func (s *scripted) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func status(code int, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, `{"message":"scripted"}`)
	}
}

func newTestTransport(t *testing.T, sleeper *sleepRecorder, now time.Time, mod func(*RetryPolicy)) *retryTransport {
	t.Helper()
	p := RetryPolicy{MaxRetries: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second,
		Sleep: sleeper.Sleep, Now: func() time.Time { return now }}
	if mod != nil {
		mod(&p)
	}
	return newRetryTransport(http.DefaultTransport, p, slog.New(slog.DiscardHandler))
}

func doRequest(t *testing.T, tr http.RoundTripper, method, url, body string) (*http.Response, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if resp != nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func TestRetryTransport(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	reset := strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)
	cases := []struct {
		name       string
		method     string
		script     []func(http.ResponseWriter)
		mod        func(*RetryPolicy)
		wantStatus int
		wantCalls  int
		wantWaits  []time.Duration // exact waits; nil means "check count only"
		waitCount  int
	}{
		{name: "primary rate limit waits until the reset", method: "POST",
			script:     []func(http.ResponseWriter){status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset)},
			wantStatus: 200, wantCalls: 2, wantWaits: []time.Duration{31 * time.Second}},
		{name: "secondary rate limit honours Retry-After", method: "POST",
			script:     []func(http.ResponseWriter){status(429, "Retry-After", "7"), status(403, "Retry-After", "2")},
			wantStatus: 200, wantCalls: 3, wantWaits: []time.Duration{7 * time.Second, 2 * time.Second}},
		{name: "429 without headers waits a minute", method: "GET",
			script:     []func(http.ResponseWriter){status(429)},
			wantStatus: 200, wantCalls: 2, wantWaits: []time.Duration{time.Minute}},
		{name: "reset too far away is returned", method: "GET",
			script:     []func(http.ResponseWriter){status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset)},
			mod:        func(p *RetryPolicy) { p.MaxRateLimitWait = 10 * time.Second },
			wantStatus: 403, wantCalls: 1, wantWaits: []time.Duration{}},
		{name: "rate limits in a row are bounded", method: "GET",
			script: []func(http.ResponseWriter){status(429, "Retry-After", "1"), status(429, "Retry-After", "1"),
				status(429, "Retry-After", "1"), status(429, "Retry-After", "1")},
			mod:        func(p *RetryPolicy) { p.MaxRateLimitRetries = 2 },
			wantStatus: 429, wantCalls: 3, waitCount: 2},
		{name: "permission 403 is not retried", method: "GET",
			script:     []func(http.ResponseWriter){status(403)},
			wantStatus: 403, wantCalls: 1, wantWaits: []time.Duration{}},
		{name: "GET 5xx retried with backoff", method: "GET",
			script:     []func(http.ResponseWriter){status(500), status(502), status(503)},
			wantStatus: 200, wantCalls: 4, waitCount: 3},
		{name: "GET 5xx bounded", method: "GET",
			script:     []func(http.ResponseWriter){status(500), status(500), status(500), status(500), status(500)},
			wantStatus: 500, wantCalls: 4, waitCount: 3},
		{name: "PATCH 5xx retried with the same body", method: "PATCH",
			script:     []func(http.ResponseWriter){status(502)},
			wantStatus: 200, wantCalls: 2, waitCount: 1},
		{name: "POST 5xx is never retried (it may have been applied)", method: "POST",
			script:     []func(http.ResponseWriter){status(502)},
			wantStatus: 502, wantCalls: 1, wantWaits: []time.Duration{}},
		{name: "404 is an answer", method: "GET",
			script:     []func(http.ResponseWriter){status(404)},
			wantStatus: 404, wantCalls: 1, wantWaits: []time.Duration{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scripted{answers: tc.script}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			sleeper := &sleepRecorder{}
			tr := newTestTransport(t, sleeper, now, tc.mod)
			body := ""
			if tc.method != "GET" {
				body = `{"body":"same every time"}`
			}
			resp, err := doRequest(t, tr, tc.method, ts.URL+"/repos/o/r/x", body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := srv.calls(); got != tc.wantCalls {
				t.Errorf("server saw %d requests, want %d", got, tc.wantCalls)
			}
			waits := sleeper.Waits()
			if tc.wantWaits != nil {
				if len(waits) != len(tc.wantWaits) {
					t.Fatalf("waits = %v, want %v", waits, tc.wantWaits)
				}
				for i := range waits {
					if waits[i] != tc.wantWaits[i] {
						t.Errorf("wait %d = %v, want %v", i, waits[i], tc.wantWaits[i])
					}
				}
			} else if len(waits) != tc.waitCount {
				t.Errorf("waits = %v, want %d of them", waits, tc.waitCount)
			}
			for i, w := range waits {
				if w < 0 || w > time.Minute {
					t.Errorf("wait %d = %v out of bounds", i, w)
				}
			}
			for _, b := range srv.bodies {
				if b != body {
					t.Errorf("a retry sent body %q, want %q", b, body)
				}
			}
		})
	}
}

func TestRetryTransportBackoffGrowsWithJitterAndCap(t *testing.T) {
	tr := newTestTransport(t, &sleepRecorder{}, time.Now(), func(p *RetryPolicy) {
		p.BaseDelay = 100 * time.Millisecond
		p.MaxDelay = time.Second
	})
	for n, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		for range 50 {
			d := tr.backoff(n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestRetryTransportConnectionErrors(t *testing.T) {
	// A port nothing listens on: the connection is refused, so the request
	// was never sent and even a POST may be repeated.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	for _, method := range []string{"GET", "POST"} {
		sleeper := &sleepRecorder{}
		tr := newTestTransport(t, sleeper, time.Now(), nil)
		_, err := doRequest(t, tr, method, "http://"+addr+"/x", "")
		if err == nil {
			t.Fatalf("%s to a closed port succeeded", method)
		}
		if got := len(sleeper.Waits()); got != 3 {
			t.Errorf("%s: %d retries after connection refused, want 3", method, got)
		}
	}
}

func TestRetryTransportStopsWhenContextEnds(t *testing.T) {
	srv := &scripted{answers: []func(http.ResponseWriter){status(429, "Retry-After", "30")}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr := newRetryTransport(http.DefaultTransport, RetryPolicy{}, slog.New(slog.DiscardHandler)) // the real timer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL, nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if srv.calls() != 1 {
		t.Errorf("server saw %d requests, want 1", srv.calls())
	}
}
