package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rawRequest sends a request written byte for byte to the front server on
// a new connection and returns the response with its body (and trailers)
// read.
func (e *testEnv) rawRequest(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	u, _ := url.Parse(e.front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", raw, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// rawBackendOnce is a backend on loopback that reads one request head per
// connection, hands it over on the returned channel, and answers with
// resp written byte for byte.
func rawBackendOnce(t *testing.T, resp string) (addr string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				ch <- head.String()
				io.WriteString(c, resp)
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func (e *testEnv) routeTo(t *testing.T, addr, project, host string) {
	t.Helper()
	ip, port, _ := net.SplitHostPort(addr)
	e.routes.PutContainer(Container{ID: "id-" + project, Name: project + "-web-1", Project: project, Service: "web", Repo: "o/r", PR: 1, Host: host, Port: port, Running: true, IP: ip})
}

// headerNames returns the field names of a raw request or response head.
func headerNames(head string) []string {
	var names []string
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, http.CanonicalHeaderKey(k))
		}
	}
	sort.Strings(names)
	return names
}

func TestProxyStripsHopByHopHeaders(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	addr, heads := rawBackendOnce(t, "HTTP/1.1 200 OK\r\n"+
		"Content-Length: 2\r\n"+
		"Connection: X-Backend-Secret, keep-alive\r\n"+
		"X-Backend-Secret: s\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authenticate: Basic\r\n"+
		"Upgrade: h2c\r\n"+
		"X-Backend-Kept: k\r\n"+
		"\r\nok")
	e.routeTo(t, addr, "p1", "pr-1.localhost")

	resp, body := e.rawRequest(t, "GET /x HTTP/1.1\r\n"+
		"Host: pr-1.localhost\r\n"+
		"Connection: x-client-secret, Keep-Alive\r\n"+
		"X-Client-Secret: c\r\n"+
		"Keep-Alive: 300\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Te: gzip\r\n"+
		"Upgrade: websocket\r\n"+ // not asked for in Connection: hop-by-hop only
		"X-Client-Kept: k\r\n"+
		"\r\n")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	head := <-heads
	got := strings.Join(headerNames(head), " ")
	// User-Agent: Go's client default must not be added either.
	want := "Host X-Client-Kept X-Forwarded-For X-Forwarded-Host X-Forwarded-Proto"
	if got != want {
		t.Errorf("backend got fields %s, want %s\n%s", got, want, head)
	}
	for _, k := range []string{"X-Backend-Secret", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client got hop-by-hop %s: %q", k, v)
		}
	}
	if c := resp.Header.Get("Connection"); c != "" {
		t.Errorf("client got the backend's Connection %q", c)
	}
	if resp.Header.Get("X-Backend-Kept") != "k" {
		t.Errorf("end-to-end field lost: %v", resp.Header)
	}
}

func TestProxyPassesUserAgentAndQuery(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	addr, heads := rawBackendOnce(t, "HTTP/1.1 204 No Content\r\n\r\n")
	e.routeTo(t, addr, "p1", "pr-1.localhost")
	tests := []struct{ target, ua, wantLine string }{
		{"/a/b%2Fc?x=1&y=%20", "qa-bot/1", "GET /a/b%2Fc?x=1&y=%20 HTTP/1.1"},
		// A ';' separator or a bad escape could split differently in the
		// backend: the query is re-encoded from what Go parses.
		{"/p?x=1&y=2;z=3&bad=%zz", "", "GET /p?x=1 HTTP/1.1"},
	}
	for _, tt := range tests {
		req := "GET " + tt.target + " HTTP/1.1\r\nHost: pr-1.localhost\r\n"
		if tt.ua != "" {
			req += "User-Agent: " + tt.ua + "\r\n"
		}
		resp, _ := e.rawRequest(t, req+"\r\n")
		if resp.StatusCode != 204 {
			t.Fatalf("%s: status %d", tt.target, resp.StatusCode)
		}
		head := <-heads
		if line, _, _ := strings.Cut(head, "\r\n"); line != tt.wantLine {
			t.Errorf("%s: backend got %q, want %q", tt.target, line, tt.wantLine)
		}
		ua := ""
		for _, l := range strings.Split(head, "\r\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "User-Agent") {
				ua = strings.TrimSpace(v)
			}
		}
		if ua != tt.ua {
			t.Errorf("%s: backend got User-Agent %q, want %q", tt.target, ua, tt.ua)
		}
	}
}

func TestProxyTrailers(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Te", r.Header.Get("Te"))
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "announced")
		w.Header().Set(http.TrailerPrefix+"X-Late", "unannounced")
	}))
	for _, te := range []string{"trailers", ""} {
		req := "GET / HTTP/1.1\r\nHost: pr-1.localhost\r\n"
		if te != "" {
			req += "TE: " + te + "\r\n"
		}
		resp, body := e.rawRequest(t, req+"\r\n")
		if resp.StatusCode != 200 || body != "body" {
			t.Fatalf("TE %q: %d %q", te, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Te"); got != te {
			t.Errorf("TE %q: backend got Te %q", te, got)
		}
		if got := resp.Trailer.Get("X-Sum"); got != "announced" {
			t.Errorf("TE %q: announced trailer %q (trailers %v)", te, got, resp.Trailer)
		}
		if got := resp.Trailer.Get("X-Late"); got != "unannounced" {
			t.Errorf("TE %q: unannounced trailer %q (trailers %v)", te, got, resp.Trailer)
		}
	}
}

func TestProxySSEHeadArrivesBeforeFirstEvent(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	first := make(chan struct{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8")
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		select {
		case <-first:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: one\n\n")
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/events", nil)
	req.Host = "pr-1.localhost"
	// The response head must arrive while the backend still holds the
	// first event.
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("no response head before the first event: %v", err)
	}
	defer resp.Body.Close()
	close(first)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("event: %q %v", line, err)
	}
}

func TestProxyUpgradeToAnotherProtocolIsRefused(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	addr, heads := rawBackendOnce(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	e.routeTo(t, addr, "p1", "pr-1.localhost")
	resp, body := e.rawRequest(t, "GET /ws HTTP/1.1\r\nHost: pr-1.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "did not answer") {
		t.Fatalf("backend switched to another protocol: %d %q", resp.StatusCode, body)
	}
	if head := <-heads; !strings.Contains(head, "Upgrade: websocket\r\n") || !strings.Contains(head, "Connection: Upgrade\r\n") {
		t.Fatalf("backend did not get the upgrade request:\n%s", head)
	}
	if n := e.handler.HijackedCount(); n != 0 {
		t.Fatalf("%d hijacked connections after a refused upgrade", n)
	}
}

func TestProxyUpgradedConnectionCarriesBytesBothWays(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	// A backend that switches to a line protocol: it echoes lines upper
	// case until "bye", then closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "bye\n" {
				return
			}
			io.WriteString(c, strings.ToUpper(line))
		}
	}()
	e.routeTo(t, ln.Addr().String(), "p1", "pr-1.localhost")

	u, _ := url.Parse(e.front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: pr-1.localhost\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "shout" {
		t.Fatalf("upgrade answer: %v %v", resp, err)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(c, msg)
		if got, err := br.ReadString('\n'); err != nil || got != strings.ToUpper(msg) {
			t.Fatalf("echo of %q: %q %v", msg, got, err)
		}
	}
	if n := e.handler.HijackedCount(); n != 1 {
		t.Fatalf("hijacked count %d, want 1", n)
	}
	// The backend ends: the client's side ends too, and leaves the registry.
	io.WriteString(c, "bye\n")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("client side after the backend closed: %v", err)
	}
	waitFor(t, 30*time.Second, "the upgraded connection to leave the registry", func() (bool, string) {
		n := e.handler.HijackedCount()
		return n == 0, fmt.Sprintf("%d hijacked", n)
	})
}

func TestProxyCountsClientsThatLeaveAs499(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, HandlerOptions{Metrics: m})
	arrived := make(chan struct{}, 1)
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL, nil)
	req.Host = "pr-1.localhost"
	errc := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("request succeeded after the client cancelled it")
	}
	waitFor(t, 30*time.Second, "the abandoned request to count as 4xx (499)", func() (bool, string) {
		n := metricValue(t, reg, "slipway_proxy_requests_total", "project=p1,class=4xx")
		return n == 1, fmt.Sprintf("4xx = %v", n)
	})
	if n := metricValue(t, reg, "slipway_proxy_requests_total", "project=p1,class=5xx"); n > 0 {
		t.Fatalf("abandoned request counted as 5xx: %v", n)
	}
}

func TestCleanQueryParams(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"a=%20&b=%2F", "a=%20&b=%2F"},
		{"a=1;b=2", ""},
		{"a=1&b=2;c=3", "a=1"},
		{"a=%zz&b=1", "b=1"},
		{"a=%2", ""},
		{"b=2&a=1&bad=%", "a=1&b=2"},
	}
	for _, tt := range tests {
		if got := cleanQueryParams(tt.in); got != tt.want {
			t.Errorf("cleanQueryParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConnectionListed(t *testing.T) {
	tests := []struct {
		conn []string
		want []string
	}{
		{nil, nil},
		{[]string{"keep-alive"}, nil},
		{[]string{"Keep-Alive, close"}, []string{"Close"}},
		{[]string{"x-a , X-B", "upgrade"}, []string{"X-A", "X-B", "Upgrade"}},
		{[]string{" , ,"}, nil},
	}
	for _, tt := range tests {
		got := connectionListed(tt.conn)
		b1, _ := json.Marshal([]string(got))
		b2, _ := json.Marshal(tt.want)
		if string(b1) != string(b2) {
			t.Errorf("connectionListed(%q) = %s, want %s", tt.conn, b1, b2)
		}
	}
}

// TestProxyPassesEarlyHintsOnRequestsWithABody: requests that go through
// http.Transport (here a POST with a body) pass 1xx answers on.
func TestProxyPassesEarlyHintsOnRequestsWithABody(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "got "+string(b))
	}))
	u, _ := url.Parse(e.front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST /form HTTP/1.1\r\nHost: pr-1.localhost\r\nContent-Length: 5\r\n\r\nhello")
	br := bufio.NewReader(c)
	hints, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hints.StatusCode != http.StatusEarlyHints || hints.Header.Get("Link") != "</app.css>; rel=preload" {
		t.Fatalf("first answer %d %v, want 103 with the Link", hints.StatusCode, hints.Header)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "got hello" || resp.Header.Get("Link") != "" {
		t.Fatalf("final answer %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// headerGate admits every request and sets a header on its answer, as the
// access gate sets X-Robots-Tag.
type headerGate struct{}

func (headerGate) Admit(w http.ResponseWriter, _ *http.Request, _ string) int {
	w.Header().Set("X-Robots-Tag", "noindex")
	return 0
}

// A preview cannot set (or clear) a cookie of Slipway's: its Set-Cookie
// fields of reserved names are dropped, on plain answers and after a 1xx,
// and a 1xx does not take the gate's headers off the final answer.
func TestProxyDropsReservedCookiesAndKeepsTheGatesHeaders(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{Gate: headerGate{}})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.Header().Add("Set-Cookie", "slipway_session=early")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Del("Set-Cookie")
		}
		for _, c := range []string{"app=1; Path=/", "slipway_session=attacker; Domain=localhost", "__Host-slipway_grant_x=1; Path=/", "SLIPWAY_oauth_state=x; Path=/auth/", "theme=dark"} {
			w.Header().Add("Set-Cookie", c)
		}
		io.WriteString(w, "got "+string(b))
	}))
	check := func(resp *http.Response) {
		t.Helper()
		if got := strings.Join(resp.Header.Values("Set-Cookie"), " | "); got != "app=1; Path=/ | theme=dark" {
			t.Errorf("Set-Cookie reaching the client: %q", got)
		}
		if resp.Header.Get("X-Robots-Tag") != "noindex" {
			t.Errorf("X-Robots-Tag %q on the final answer", resp.Header.Get("X-Robots-Tag"))
		}
	}
	resp, _ := e.get(t, "pr-1.localhost", "/", nil)
	check(resp)

	u, _ := url.Parse(e.front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST /form HTTP/1.1\r\nHost: pr-1.localhost\r\nContent-Length: 5\r\n\r\nhello")
	br := bufio.NewReader(c)
	hints, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hints.StatusCode != http.StatusEarlyHints || len(hints.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("first answer %d %v, want 103 without Set-Cookie", hints.StatusCode, hints.Header)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "got hello" {
		t.Fatalf("final answer %d %q", resp.StatusCode, body)
	}
	check(resp)
}
