package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// rawBackend is a minimal keep-alive HTTP/1.1 server on loopback that
// answers every request with the same response and allocates nothing per
// request, so that benchmarks and allocation counts measure the proxy. It
// returns its address.
func rawBackend(tb testing.TB, body []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// A request without a body ends at the first empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// hotPathEnv is a Handler with metrics and one route to a raw backend.
func hotPathEnv(tb testing.TB, body []byte) *Handler {
	tb.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	routes := NewRoutes(nil, anyHost{})
	h := NewHandler(routes, HandlerOptions{Metrics: m})
	tb.Cleanup(h.Close)
	ip, port, _ := net.SplitHostPort(rawBackend(tb, body))
	routes.PutContainer(Container{ID: "web", Name: "p1-web-1", Project: "p1", Service: "web", Repo: "o/r", PR: 1, Host: "pr-1.localhost", Port: port, Running: true, IP: ip})
	return h
}

// discardWriter is a ResponseWriter that keeps the status and counts the
// body.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += len(p)
	return len(p), nil
}

// wrkRequest is a request as the server hands wrk's GET to the handler.
func wrkRequest(ctx context.Context) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://pr-1.localhost/1024", nil)
	r.RemoteAddr = "127.0.0.1:50000"
	r.RequestURI = "/1024"
	r.Body = http.NoBody
	return r
}

// serveOnce sends one request through h to its backend and checks the answer.
func serveOnce(h *Handler, r *http.Request, w *discardWriter, size int) error {
	clear(w.header)
	w.status, w.n = 0, 0
	h.ServeHTTP(w, r)
	if w.status != 200 || w.n != size {
		return fmt.Errorf("status %d, %d bytes, want 200 and %d", w.status, w.n, size)
	}
	return nil
}

// BenchmarkHandler measures the handler alone (no front server): lookup,
// metrics, the request to the backend over a kept-alive loopback
// connection, and the copy of the response.
func BenchmarkHandler(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			h := hotPathEnv(b, bytes.Repeat([]byte("x"), size))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := wrkRequest(ctx)
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := serveOnce(h, r, w, size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServer measures the whole path as wrk sees it: keep-alive
// client connections to a Server on loopback, the handler, the backend.
func BenchmarkServer(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			h := hotPathEnv(b, bytes.Repeat([]byte("x"), size))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv, err := NewServer(ServerOptions{Domain: "localhost", HTTPListener: ln, Proxy: h})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { srv.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			addr := srv.HTTPAddr().String()
			req := []byte("GET /1024 HTTP/1.1\r\nHost: pr-1.localhost\r\n\r\n")
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReaderSize(c, 64<<10)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if err := readRawResponse(br, size); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// readRawResponse reads one response with a Content-Length body of size
// bytes and a 200 status.
func readRawResponse(br *bufio.Reader, size int) error {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n != size {
		return fmt.Errorf("content-length %d, want %d", n, size)
	}
	if _, err := br.Discard(n); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}
