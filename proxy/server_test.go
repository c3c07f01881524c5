package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startServer runs a Server on loopback port 0 until the test ends (or
// stop is called) and returns it with its stop func, which waits for Run.
func startServer(t *testing.T, opts ServerOptions) (*Server, func() error) {
	t.Helper()
	if opts.HTTPListener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.HTTPListener = ln
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

func hostGet(t *testing.T, client *http.Client, url, host string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestServerRoutesByHost(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("preview"))
	s, _ := startServer(t, ServerOptions{
		Domain:  "Example.Test.",
		Proxy:   e.handler,
		Control: text("control"),
	})
	base := "http://" + s.HTTPAddr().String()
	tests := []struct {
		host   string
		status int
		body   string
	}{
		{"pr-1.example.test", 200, "preview"},
		{"PR-1.Example.Test.:80", 200, "preview"},
		{"pr-2.example.test", 404, "No preview here"},
		{"bad_name.example.test", 404, "No preview here"},
		{"a.b.example.test", 404, "No preview here"},
		{"example.test", 200, "control"},
		{"example.test:8080", 200, "control"},
		{s.HTTPAddr().String(), 200, "control"},
		{"[::1]:8080", 200, "control"},
		{"other.org", 200, "control"},
		{"notexample.test", 200, "control"},
		{"pr-1.example.test.evil.org", 200, "control"},
	}
	for _, tt := range tests {
		status, body, err := hostGet(t, http.DefaultClient, base+"/x", tt.host)
		if err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("Host %q: %d %.60q, want %d %q", tt.host, status, body, tt.status, tt.body)
		}
	}
}

func TestServerRejectsBadConfig(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	if _, err := NewServer(ServerOptions{Domain: "example.test"}); err == nil {
		t.Error("no proxy accepted")
	}
	if _, err := NewServer(ServerOptions{Domain: "Bad Domain", Proxy: e.handler, HTTPAddr: "127.0.0.1:0"}); err == nil {
		t.Error("bad domain accepted")
	}
	if _, err := NewServer(ServerOptions{Domain: "example.test", Proxy: e.handler, HTTPAddr: "256.0.0.1:0"}); err == nil {
		t.Error("bad listen address accepted")
	}
}

func TestServerClosesSlowLorisClients(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", text("preview"))
	s, _ := startServer(t, ServerOptions{Domain: "example.test", Proxy: e.handler, ReadHeaderTimeout: 200 * time.Millisecond})

	conn, err := net.Dial("tcp", s.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers that never end.
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: pr-1.example.test\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server kept a connection whose headers never ended")
	}
	if n > 0 && strings.Contains(string(buf[:n]), "preview") {
		t.Fatalf("incomplete request was served: %q", buf[:n])
	}
	// Others are still served.
	status, body, err := hostGet(t, http.DefaultClient, "http://"+s.HTTPAddr().String(), "pr-1.example.test")
	if err != nil || status != 200 || body != "preview" {
		t.Fatalf("after slow client: %d %q %v", status, body, err)
	}
}

func TestServerGracefulShutdown(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	inFlight := make(chan struct{})
	release := make(chan struct{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			close(inFlight)
			<-release
			io.WriteString(w, "finished")
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			_, _, _ = c.Read(r.Context())
		}
	}))
	s, stop := startServer(t, ServerOptions{Domain: "example.test", Proxy: e.handler, ShutdownGrace: 10 * time.Second})
	base := "http://" + s.HTTPAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.HTTPAddr().String()+"/ws", &websocket.DialOptions{Host: "pr-1.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		st, b, err := hostGet(t, &http.Client{}, base+"/slow", "pr-1.example.test")
		res <- result{st, b, err}
	}()
	<-inFlight

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// The server stops accepting new connections…
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.HTTPAddr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// …but waits for the request in flight.
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Then the websocket is closed deliberately.
	if _, _, err := ws.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("websocket still open after shutdown: %v", err)
	}
}

func TestServerShutdownGraceIsBounded(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	inFlight := make(chan struct{})
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	e.addBackend(t, "p1-web-1", "p1", "pr-1.example.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		select {
		case <-never:
		case <-r.Context().Done():
		}
	}))
	s, stop := startServer(t, ServerOptions{Domain: "example.test", Proxy: e.handler, ShutdownGrace: 200 * time.Millisecond})
	res := make(chan error, 1)
	go func() {
		_, _, err := hostGet(t, &http.Client{}, "http://"+s.HTTPAddr().String(), "pr-1.example.test")
		res <- err
	}()
	<-inFlight
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not end after its grace")
	}
	if err := <-res; err == nil {
		t.Fatal("request that outlived the grace got a complete answer")
	}
}
