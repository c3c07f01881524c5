package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The README's main job: slipway demo brings up two PRs, serves each one's
// own content, and leaves nothing behind when stopped.
func TestDemo(t *testing.T) {
	cli := dockertest.Client(t)
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		root := newRoot(&out, &errOut)
		root.SetArgs([]string{"demo", "--listen", "127.0.0.1:0", "--log-format", "text"})
		done <- root.ExecuteContext(ctx)
	}()

	urlRE := regexp.MustCompile(`http://pr-(\d)\.localhost:(\d+)`)
	deadline := time.Now().Add(8 * time.Minute) // the first run compiles the sample
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready after 8m:\n%s\n%s", out.String(), errOut.String())
		}
	}
	m := urlRE.FindAllStringSubmatch(out.String(), -1)
	if len(m) < 2 {
		t.Fatalf("demo printed no URLs:\n%s", out.String())
	}
	port := m[0][2]
	for pr, want := range map[int]string{1: "Hello from Slipway!", 2: "Hello from pull request 2"} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/", nil)
		req.Host = fmt.Sprintf("pr-%d.localhost", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if resp.StatusCode != 200 || !strings.Contains(page, want) || !strings.Contains(page, fmt.Sprintf("pull request <strong>#%d</strong>", pr)) {
			t.Errorf("pr-%d: %d, page lacks %q:\n%s", pr, resp.StatusCode, want, page)
		}
		if !strings.Contains(page, fmt.Sprintf("visit number 1 to PR %d", pr)) {
			t.Errorf("pr-%d: the web did not reach its own API by name:\n%s", pr, page)
		}
	}
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("demo did not stop within 2m of Ctrl-C")
	}
	if !strings.Contains(out.String(), "Removed demo-shop-pr-1 and demo-shop-pr-2") {
		t.Errorf("demo did not report its teardown:\n%s", out.String())
	}
	left, err := dockertest.Leftovers(context.Background(), cli, contract.LabelRepo+"="+demoOwner+"/"+demoRepo)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the demo left %v", left)
	}
}
