package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// testEnv is a live table, a proxy Handler and a real front server.
type testEnv struct {
	routes  *Routes
	handler *Handler
	front   *httptest.Server
	client  *http.Client
}

func newTestEnv(t *testing.T, opts HandlerOptions) *testEnv {
	t.Helper()
	routes := NewRoutes(nil, anyHost{})
	h := NewHandler(routes, opts)
	front := httptest.NewServer(h)
	t.Cleanup(func() {
		front.Close()
		h.Close()
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &testEnv{routes: routes, handler: h, front: front, client: &http.Client{Transport: tr}}
}

// addBackend starts a real HTTP server and routes host to it as container
// name of project.
func (e *testEnv) addBackend(t *testing.T, name, project, host string, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.routes.PutContainer(backendContainer(t, srv, name, project, host))
	return srv
}

func backendContainer(t *testing.T, srv *httptest.Server, name, project, host string) Container {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return Container{ID: "id-" + name, Name: name, Project: project, Service: "web", Repo: "o/r", PR: 1, Host: host, Port: u.Port(), Running: true, IP: u.Hostname()}
}

// get sends a GET for host through the proxy and returns the response with
// its body read.
func (e *testEnv) get(t *testing.T, host, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s%s: %v", host, path, err)
	}
	return resp, string(b)
}

func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) })
}

func TestProxyServesBackendWithHostPreserved(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s path=%s query=%s", r.Host, r.URL.Path, r.URL.RawQuery)
	}))
	resp, body := e.get(t, "pr-1.localhost", "/a/b?x=1", nil)
	if resp.StatusCode != 200 || body != "host=pr-1.localhost path=/a/b query=x=1" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestProxyBadHostHeaders(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", text("pr-1"))
	tests := []struct {
		host   string
		status int
	}{
		{"pr-1.localhost", 200},
		{"pr-1.localhost:8080", 200},
		{"PR-1.LocalHost", 200},
		{"PR-1.localhost.:443", 200},
		{"pr-1.localhost.", 200},
		{"pr-1.lоcalhost", 404}, // Cyrillic о
		{"xn--pr-1-abc.localhost", 404},
		{"pr-2.localhost", 404},
		{"127.0.0.1", 404},
		{"[::1]:80", 404},
		{"pr-1.localhost..", 404},
		{"localhost", 404},
	}
	for _, tt := range tests {
		resp, body := e.get(t, tt.host, "/", nil)
		if resp.StatusCode != tt.status {
			t.Errorf("Host %q: status %d, want %d (%q)", tt.host, resp.StatusCode, tt.status, body)
		}
		if tt.status == 200 && body != "pr-1" {
			t.Errorf("Host %q: body %q", tt.host, body)
		}
	}
}

func TestProxyWebsocketEchoAndCloseOnRemoval(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.front.URL, "http")+"/ws", &websocket.DialOptions{Host: "pr-1.localhost"})
	if err != nil {
		t.Fatalf("dial websocket through proxy: %v", err)
	}
	defer ws.CloseNow()
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+msg {
			t.Fatalf("got %q", got)
		}
	}
	if n := e.handler.HijackedCount(); n != 1 {
		t.Fatalf("hijacked count %d, want 1", n)
	}
	// Another project's change leaves the websocket alone.
	e.routes.PutContainer(Container{ID: "other", Name: "other", Project: "p2", Repo: "o/r", PR: 1, Host: "pr-2.localhost", Port: "1", Running: true, IP: "127.0.0.1"})
	if err := ws.Write(ctx, websocket.MessageText, []byte("still")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ws.Read(ctx); err != nil || string(got) != "echo:still" {
		t.Fatalf("after unrelated change: %q %v", got, err)
	}
	// The backend leaves the table: the proxy closes the client side.
	e.routes.RemoveContainer("id-p1-web-1")
	readCtx, readCancel := context.WithTimeout(ctx, 5*time.Second)
	defer readCancel()
	_, _, err = ws.Read(readCtx)
	if err == nil {
		t.Fatal("read succeeded after the route went away")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("websocket left open after the route went away")
	}
	if n := e.handler.HijackedCount(); n != 0 {
		t.Fatalf("hijacked count %d after removal", n)
	}
}

func TestProxyClosesWebsocketsWhenProjectIsRemoving(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, _, _ = c.Read(r.Context())
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.front.URL, "http"), &websocket.DialOptions{Host: "pr-1.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := e.routes.SetState("p1", []string{"pr-1.localhost"}, State{Phase: PhaseRemoving}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("websocket not closed on removal: %v", err)
	}
	resp, body := e.get(t, "pr-1.localhost", "/", nil)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "Environment removed") {
		t.Fatalf("removing host: %d %q", resp.StatusCode, body)
	}
}

func TestProxySSEEventsArriveOneByOne(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	next := make(chan struct{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			http.NewResponseController(w).Flush()
			// The next event is only sent once the client has read this one.
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/events", nil)
	req.Host = "pr-1.localhost"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 5; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v (buffered by the proxy?)", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				t.Fatal("backend gone")
			}
		}
	}
}

func TestProxyChunkedResponseFlushedAtOnce(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	release := make(chan struct{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first part\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second part\n")
	}))
	req, _ := http.NewRequest(http.MethodGet, e.front.URL, nil)
	req.Host = "pr-1.localhost"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first part\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "second part\n" {
		t.Fatalf("rest: %q %v", rest, err)
	}
}

func TestProxyStreamsLargeUpload(t *testing.T) {
	const total = 100 << 20
	e := newTestEnv(t, HandlerOptions{})
	started := make(chan struct{})
	type result struct {
		n   int64
		sum string
	}
	got := make(chan result, 1)
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var n int64
		once := sync.Once{}
		for {
			k, err := r.Body.Read(buf)
			if k > 0 {
				once.Do(func() { close(started) })
				h.Write(buf[:k])
				n += int64(k)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		got <- result{n, fmt.Sprintf("%x", h.Sum(nil))}
		fmt.Fprintf(w, "%d", n)
	}))

	pr, pw := io.Pipe()
	want := sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		write := func() error {
			want.Write(chunk)
			_, err := pw.Write(chunk)
			return err
		}
		// The first MiB, then wait until the backend has bytes: a proxy
		// that buffered the whole body would never forward them.
		if err := write(); err != nil {
			writeErr <- err
			return
		}
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			pw.CloseWithError(errors.New("backend received nothing while the client was still sending"))
			writeErr <- errors.New("backend received nothing while the client was still sending")
			return
		}
		for sent := len(chunk); sent < total; sent += len(chunk) {
			if err := write(); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/upload", pr)
	req.Host = "pr-1.localhost"
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(total) {
		t.Fatalf("upload answer %d %q", resp.StatusCode, body)
	}
	r := <-got
	if r.n != total || r.sum != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Fatalf("backend got %d bytes, sum %s", r.n, r.sum)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"host":  r.Host,
			"xff":   strings.Join(r.Header.Values("X-Forwarded-For"), "|"),
			"proto": r.Header.Get("X-Forwarded-Proto"),
			"xfh":   r.Header.Get("X-Forwarded-Host"),
			"fwd":   r.Header.Get("Forwarded"),
		})
	})
	spoof := http.Header{
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         {"for=6.6.6.6"},
	}
	tests := []struct {
		name    string
		trusted []string
		want    map[string]string
	}{
		{"untrusted peer: client headers dropped", nil, map[string]string{
			"host": "pr-1.localhost", "xff": "127.0.0.1", "proto": "http", "xfh": "pr-1.localhost", "fwd": "",
		}},
		{"peer outside the trusted networks", []string{"10.0.0.0/8", "192.0.2.7"}, map[string]string{
			"host": "pr-1.localhost", "xff": "127.0.0.1", "proto": "http", "xfh": "pr-1.localhost", "fwd": "",
		}},
		{"trusted peer: client headers kept and extended", []string{"127.0.0.0/8"}, map[string]string{
			"host": "pr-1.localhost", "xff": "6.6.6.6, 127.0.0.1", "proto": "https", "xfh": "evil.example", "fwd": "for=6.6.6.6",
		}},
		{"trusted single address", []string{"127.0.0.1"}, map[string]string{
			"host": "pr-1.localhost", "xff": "6.6.6.6, 127.0.0.1", "proto": "https", "xfh": "evil.example", "fwd": "for=6.6.6.6",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted, err := ParseTrustedProxies(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			e := newTestEnv(t, HandlerOptions{TrustedProxies: trusted})
			e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", echo)
			for _, hdr := range []http.Header{spoof, nil} {
				_, body := e.get(t, "pr-1.localhost", "/", hdr)
				var got map[string]string
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("%v: %q", err, body)
				}
				want := tt.want
				if hdr == nil { // nothing sent: the proxy's own values
					want = map[string]string{"host": "pr-1.localhost", "xff": "127.0.0.1", "proto": "http", "xfh": "pr-1.localhost", "fwd": ""}
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("sent %v: %s = %q, want %q", hdr != nil, k, got[k], v)
					}
				}
			}
		})
	}
	if _, err := ParseTrustedProxies([]string{"not-a-cidr"}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestProxyStatusPages(t *testing.T) {
	var woken []string
	var mu sync.Mutex
	e := newTestEnv(t, HandlerOptions{OnWake: func(p string) { mu.Lock(); woken = append(woken, p); mu.Unlock() }})
	set := func(project, host string, st State) {
		t.Helper()
		if err := e.routes.SetState(project, []string{host}, st); err != nil {
			t.Fatal(err)
		}
	}
	set("acme-shop-pr-1", "pr-1.localhost", State{Phase: PhaseQueued})
	set("acme-shop-pr-2", "pr-2.localhost", State{Phase: PhaseBuilding, Step: "build", Service: "web"})
	set("acme-shop-pr-3", "pr-3.localhost", State{Phase: PhaseStarting})
	set("acme-shop-pr-4", "pr-4.localhost", State{Phase: PhaseFailed, Step: "after_deploy", Service: "api", Reason: `migrate: exit 1 <script>alert(1)</script>`})
	set("acme-shop-pr-5", "pr-5.localhost", State{Phase: PhaseRemoving})
	e.routes.PutContainer(Container{ID: "s", Name: "acme-shop-pr-6-web-1", Project: "acme-shop-pr-6", Repo: "o/r", PR: 1, Service: "web", Host: "pr-6.localhost", Port: "80"})
	e.routes.PutContainer(Container{ID: "u", Name: "acme-shop-pr-7-web-1", Project: "acme-shop-pr-7", Repo: "o/r", PR: 1, Service: "web", Host: "pr-7.localhost", Port: "80", Running: true, Health: "unhealthy", IP: "127.0.0.1"})

	tests := []struct {
		host       string
		status     int
		retryAfter bool
		contains   []string
	}{
		{"pr-1.localhost", 503, true, []string{"Preview queued", "queued", `http-equiv="refresh"`}},
		{"pr-2.localhost", 503, true, []string{"Preview building", "building", "build", "web"}},
		{"pr-3.localhost", 503, true, []string{"Preview starting", "starting"}},
		{"pr-4.localhost", 502, false, []string{"Deploy failed", "after_deploy", "api", "migrate: exit 1 &lt;script&gt;"}},
		{"pr-5.localhost", 410, false, []string{"Environment removed"}},
		{"pr-6.localhost", 503, true, []string{"waking up", "starting"}},
		{"pr-7.localhost", 503, true, []string{"unhealthy"}},
		{"pr-9.localhost", 404, false, []string{"No preview here"}},
	}
	for _, tt := range tests {
		resp, body := e.get(t, tt.host, "/some/path", nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.host, resp.StatusCode, tt.status)
		}
		if got := resp.Header.Get("Retry-After") != ""; got != tt.retryAfter {
			t.Errorf("%s: Retry-After %q", tt.host, resp.Header.Get("Retry-After"))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: content type %q", tt.host, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: cache control %q", tt.host, cc)
		}
		for _, s := range tt.contains {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q:\n%s", tt.host, s, body)
			}
		}
		for _, banned := range []string{"<script>", "acme-shop", "http://", "https://", "src=", "<link"} {
			if strings.Contains(body, banned) {
				t.Errorf("%s: page contains %q", tt.host, banned)
			}
		}
	}
	mu.Lock()
	if fmt.Sprint(woken) != "[acme-shop-pr-6]" {
		t.Errorf("OnWake calls: %v", woken)
	}
	mu.Unlock()

	// The 404 is the same whatever the host: it reveals nothing.
	_, a := e.get(t, "pr-404.localhost", "/", nil)
	_, b := e.get(t, "something-else.example.com", "/x?y", nil)
	if a != b {
		t.Fatal("404 body depends on the host")
	}
}

func TestProxyUpstreamErrors(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{ResponseHeaderTimeout: 200 * time.Millisecond})

	// Refused: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	e.routes.PutContainer(Container{ID: "r", Name: "r", Project: "p1", Repo: "o/r", PR: 1, Host: "refused.localhost", Port: port, Running: true, IP: "127.0.0.1"})

	// Timeout: answers after the response-header timeout.
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	e.addBackend(t, "slow", "p2", "slow.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	}))

	// Reset mid-response: promises 1 MB, sends some, then resets.
	e.addBackend(t, "reset", "p3", "reset.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "fine")
			return
		}
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(200)
		w.Write(make([]byte, 1000))
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))

	resp, body := e.get(t, "refused.localhost", "/", nil)
	if resp.StatusCode != 502 || !strings.Contains(body, "did not answer") {
		t.Errorf("refused: %d %q", resp.StatusCode, body)
	}
	resp, body = e.get(t, "slow.localhost", "/", nil)
	if resp.StatusCode != 504 || !strings.Contains(body, "too long") {
		t.Errorf("timeout: %d %q", resp.StatusCode, body)
	}

	req, _ := http.NewRequest(http.MethodGet, e.front.URL, nil)
	req.Host = "reset.localhost"
	resp, err = e.client.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reset: status %d", resp.StatusCode)
		}
	}
	if err == nil {
		t.Fatal("a response cut by the upstream reached the client as complete")
	}
	// The proxy carries on.
	if resp, body := e.get(t, "reset.localhost", "/ok", nil); resp.StatusCode != 200 || body != "fine" {
		t.Fatalf("after reset: %d %q", resp.StatusCode, body)
	}
}

func TestProxySpreadsOverReplicas(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", text("one"))
	e.addBackend(t, "p1-web-2", "p1", "pr-1.localhost", text("two"))
	counts := map[string]int{}
	for i := 0; i < 20; i++ {
		_, body := e.get(t, "pr-1.localhost", "/", nil)
		counts[body]++
	}
	if counts["one"] != 10 || counts["two"] != 10 {
		t.Fatalf("replica counts %v", counts)
	}
}

func TestProxyRecordsLastRequestAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("second registration on one registry succeeded")
	}
	e := newTestEnv(t, HandlerOptions{Metrics: m})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", text("ok"))
	if _, ok := e.handler.LastRequest("p1"); ok {
		t.Fatal("last request before any request")
	}
	before := time.Now()
	e.get(t, "pr-1.localhost", "/", nil)
	e.get(t, "pr-1.localhost", "/", nil)
	e.get(t, "nope.localhost", "/", nil)
	last, ok := e.handler.LastRequest("p1")
	if !ok || last.Before(before) || last.After(time.Now()) {
		t.Fatalf("last request %v %v (before %v)", last, ok, before)
	}
	if all := e.handler.LastRequests(); len(all) != 1 || !all["p1"].Equal(last) {
		t.Fatalf("LastRequests %v", all)
	}
	if n := metricValue(t, reg, "slipway_proxy_requests_total", "project=p1,class=2xx"); n != 2 {
		t.Fatalf("p1 2xx = %v", n)
	}
	if n := metricValue(t, reg, "slipway_proxy_requests_total", "project=unknown,class=4xx"); n != 1 {
		t.Fatalf("unknown 4xx = %v", n)
	}
	if n := metricValue(t, reg, "slipway_proxy_request_duration_seconds", ""); n != 3 {
		t.Fatalf("histogram count %v", n)
	}
	// The project leaves the table: its series and times go.
	e.routes.RemoveContainer("id-p1-web-1")
	if _, ok := e.handler.LastRequest("p1"); ok {
		t.Fatal("last request kept for a project that left")
	}
	if n := metricValue(t, reg, "slipway_proxy_requests_total", "project=p1,class=2xx"); n != -1 {
		t.Fatalf("p1 series still there after removal: %v", n)
	}
	if n := metricValue(t, reg, "slipway_proxy_requests_total", "project=unknown,class=4xx"); n != 1 {
		t.Fatalf("unknown 4xx after removal = %v", n)
	}
}

func TestProxyRouteChangesUnderLoad(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "stable-web-1", "stable", "stable.localhost", text("stable"))
	other := httptest.NewServer(text("other"))
	t.Cleanup(other.Close)

	stop := make(chan struct{})
	var churns atomic.Int64
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := backendContainer(t, other, fmt.Sprintf("churn-%d", i%5), "churn", fmt.Sprintf("c%d.localhost", i%5))
			switch i % 6 {
			case 0, 1:
				e.routes.PutContainer(c)
			case 2:
				e.routes.RemoveContainer(c.ID)
			case 3:
				_ = e.routes.SetState("churn", []string{"c1.localhost", "c2.localhost"}, State{Phase: PhaseBuilding})
			case 4:
				e.routes.ClearState("churn")
			case 5:
				// The stable route's container reported again, unchanged,
				// and a re-list that keeps it.
				cs := []Container{backendContainer(t, other, "x", "churn", "c9.localhost")}
				for _, r := range e.routes.Table().Routes() {
					if r.Project == "stable" {
						cs = append(cs, Container{ID: "id-stable-web-1", Name: "stable-web-1", Project: "stable", Repo: "o/r", PR: 1, Service: "web",
							Host: r.Host, Port: strings.Split(r.Backends[0].Addr, ":")[1], Running: true, IP: "127.0.0.1"})
					}
				}
				e.routes.ReplaceContainers(cs)
			}
			churns.Add(1)
		}
	}()

	const workers, perWorker = 8, 150
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				req, _ := http.NewRequest(http.MethodGet, e.front.URL, nil)
				req.Host = "stable.localhost"
				resp, err := e.client.Do(req)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "stable" {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", resp.StatusCode, b, err))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-churnDone
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests on the unchanged route failed, first: %v", n, workers*perWorker, firstErr.Load())
	}
	if churns.Load() < 10 {
		t.Fatalf("only %d table changes happened during the load", churns.Load())
	}
}

// metricValue gathers reg and returns the value of the series of name whose
// labels are exactly labels ("k=v,k=v"): a counter's value or a
// histogram's count; -1 when there is no such series.
func metricValue(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(ls)
			want := strings.Split(labels, ",")
			if labels == "" {
				want = nil
			}
			sort.Strings(want)
			if strings.Join(ls, ",") != strings.Join(want, ",") {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
		}
	}
	return -1
}
