package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend is a real HTTP server that counts the connections it
// accepts and closes.
func countingBackend(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var opened, closed atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &opened, &closed
}

func TestTransportReusesKeepAliveConnections(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	srv, opened, _ := countingBackend(t, text("ok"))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	for i := 0; i < 20; i++ {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, e.front.URL, nil)
		req.Host = "pr-1.localhost"
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "ok"
		if method == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("%s %d: %d %q", method, i, resp.StatusCode, b)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("20 sequential requests opened %d backend connections, want 1", n)
	}
}

func TestTransportHonoursConnectionClose(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	srv, opened, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	for i := 0; i < 5; i++ {
		if resp, body := e.get(t, "pr-1.localhost", "/", nil); resp.StatusCode != 200 || body != "bye" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	if n := opened.Load(); n != 5 {
		t.Fatalf("backend saw %d connections, want one per request", n)
	}
}

// TestTransportRetriesConnectionClosedWhileIdle uses a raw backend that
// promises keep-alive and then closes every connection after one answer.
func TestTransportRetriesConnectionClosedWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello")
			}()
		}
	}()
	e := newTestEnv(t, HandlerOptions{})
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	e.routes.PutContainer(Container{ID: "raw", Name: "raw", Project: "p1", Repo: "o/r", PR: 1, Host: "pr-1.localhost", Port: port, Running: true, IP: "127.0.0.1"})
	for i := 0; i < 10; i++ {
		if i > 0 {
			time.Sleep(10 * time.Millisecond) // let the close arrive
		}
		resp, body := e.get(t, "pr-1.localhost", "/", nil)
		if resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := accepted.Load(); n < 10 {
		t.Fatalf("backend accepted %d connections for 10 requests", n)
	}
}

func TestTransportSkipsInformationalResponses(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	e.addBackend(t, "p1-web-1", "p1", "pr-1.localhost", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	}))
	for i := 0; i < 3; i++ {
		if resp, body := e.get(t, "pr-1.localhost", "/", nil); resp.StatusCode != 200 || body != "final" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
}

func TestTransportDropsConnectionOfAbandonedResponse(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	srv, opened, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(64<<20))
		chunk := make([]byte, 64<<10)
		for i := 0; i < 1024; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/big", nil)
	req.Host = "pr-1.localhost"
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The half-read connection is never handed to the next request.
	for i := 0; i < 3; i++ {
		if resp, body := e.get(t, "pr-1.localhost", "/small", nil); resp.StatusCode != 200 || body != "small" {
			t.Fatalf("after abandoned response: %d %q", resp.StatusCode, body)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Fatalf("backend saw %d connections, want 2 (the abandoned one, then one reused)", n)
	}
}

func TestTransportClosesIdleConnectionsOfRemovedBackends(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	srv, opened, closed := countingBackend(t, text("ok"))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	e.get(t, "pr-1.localhost", "/", nil)
	if opened.Load() != 1 || closed.Load() != 0 {
		t.Fatalf("opened %d closed %d", opened.Load(), closed.Load())
	}
	e.routes.RemoveContainer("id-p1-web-1")
	waitFor(t, 10*time.Second, "the idle connection closed", func() (bool, string) {
		return closed.Load() == 1, fmt.Sprint("closed ", closed.Load())
	})
}

func TestTransportConcurrentRequestsShareThePool(t *testing.T) {
	e := newTestEnv(t, HandlerOptions{})
	srv, opened, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				path := fmt.Sprintf("/w%d/%d", w, i)
				req, _ := http.NewRequest(http.MethodGet, e.front.URL+path, nil)
				req.Host = "pr-1.localhost"
				resp, err := e.client.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "path="+path {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d requests got a wrong or no answer", bad.Load())
	}
	if n := opened.Load(); n > 8 {
		t.Fatalf("8 concurrent clients opened %d backend connections", n)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatal(srv.URL)
	}
}

// TestTransportHeaderTimeoutOnReusedConnection: a kept-alive connection
// keeps its read deadline across short answers (see armHeaderTimeout); a
// slow head on it still times out, and a body that takes longer than the
// timeout is never cut.
func TestTransportHeaderTimeoutOnReusedConnection(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newTestEnv(t, HandlerOptions{ResponseHeaderTimeout: timeout})
	srv, opened, _ := countingBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/fast":
			io.WriteString(w, "fast")
		case "/slow": // no head before the timeout
			<-r.Context().Done()
		case "/stream", "/long": // the head at once, the rest after the timeout
			if r.URL.Path == "/long" {
				w.Header().Set("Content-Length", strconv.Itoa(2+64<<10))
			}
			io.WriteString(w, "a")
			rc.Flush()
			select {
			case <-time.After(3 * timeout): // the fixture's pace, not a wait for the test
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, strings.Repeat("b", 64<<10)+"c")
		}
	}))
	e.routes.PutContainer(backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost"))
	want := "a" + strings.Repeat("b", 64<<10) + "c"
	for i, step := range []struct {
		path   string
		status int
		body   string
	}{
		{"/fast", 200, "fast"},
		{"/fast", 200, "fast"},
		{"/slow", http.StatusGatewayTimeout, ""},
		{"/fast", 200, "fast"},
		{"/stream", 200, want},
		{"/fast", 200, "fast"},
		{"/long", 200, want},
		{"/fast", 200, "fast"},
	} {
		resp, body := e.get(t, "pr-1.localhost", step.path, nil)
		if resp.StatusCode != step.status || step.body != "" && body != step.body {
			t.Fatalf("step %d %s: %d, %d bytes", i, step.path, resp.StatusCode, len(body))
		}
	}
	// One connection for the first two, another after the timeout closed it.
	if n := opened.Load(); n != 2 {
		t.Fatalf("backend saw %d connections, want 2", n)
	}
}
