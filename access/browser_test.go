package access_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

// findChromium returns Debian's chromium, or stops the test (a failure
// under CI=true).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	dockertest.Unavailable(t, "no chromium binary in PATH (apt-get install -y chromium)")
	return ""
}

// TestBrowserSignsInToAPrivatePreview opens a private preview in a real
// browser, is sent through the (fake) GitHub sign-in, and lands on the
// preview; a user without access sees a refusal naming the repository.
func TestBrowserSignsInToAPrivatePreview(t *testing.T) {
	chrome := findChromium(t)
	s := newSite(t)
	// The browser resolves preview.test and its subdomains to the site, as
	// DNS would; the fake GitHub is on 127.0.0.1.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP preview.test 127.0.0.1, MAP *.preview.test 127.0.0.1"),
	)
	preview := "http://pr-7." + domain + ":" + s.port + "/orders"
	shot := func(ctx context.Context, name string) {
		dir := os.Getenv("SLIPWAY_ARTIFACTS")
		if dir == "" {
			return
		}
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), png, 0o644)
		}
	}
	signIn := func(login string) (context.Context, func()) {
		// A browser of its own (its own profile, no cookies), signed out of GitHub.
		s.fake.SignIn("")
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelTab := chromedp.NewContext(allocCtx)
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		if err := chromedp.Do(ctx, chromedp.Navigate(preview), chromedp.WaitVisible(chromedp.ID("login_field"))); err != nil {
			t.Fatalf("%s: the preview did not send the browser to GitHub's sign-in: %v", login, err)
		}
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("login_field"), login), chromedp.Click(chromedp.ID("signin"))); err != nil {
			t.Fatalf("%s: sign in: %v", login, err)
		}
		return ctx, func() { cancel(); cancelTab(); cancelAlloc() }
	}

	ctx, done := signIn("ada")
	ctx, cancelShort := context.WithTimeout(ctx, 15*time.Second)
	defer cancelShort()
	defer done()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("landed"))); err != nil {
		shot(ctx, "access-ada.png")
		loc, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`location.href + " " + document.body.innerText`))
		var paths []string
		for _, r := range s.fake.Requests() {
			paths = append(paths, r.Method+" "+r.Path+" "+r.Query.Encode())
		}
		t.Fatalf("ada did not land on the preview: %v (at %s; GitHub saw %v)", err, loc, paths)
	}
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || loc != preview {
		t.Errorf("ada landed on %q, want %q (%v)", loc, preview, err)
	}
	// Slipway's cookies are HttpOnly: the preview's scripts cannot read them.
	if c, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(c, "slipway_") {
		t.Errorf("the preview's script reads Slipway's cookie: %q", c)
	}

	done()
	s.mu.Lock()
	served := len(s.backend) // the page, and maybe the favicon
	s.mu.Unlock()
	ctx2, done2 := signIn("mallory")
	defer done2()
	if err := chromedp.Do(ctx2, chromedp.WaitVisible(chromedp.ID("refused"))); err != nil {
		shot(ctx2, "access-mallory.png")
		t.Fatalf("mallory got no refusal page: %v", err)
	}
	text, _ := chromedp.Run(ctx2, chromedp.Evaluate[string](`document.body.innerText`))
	if !strings.Contains(text, "acme/shop") || !strings.Contains(text, "mallory") {
		t.Errorf("refusal page does not name the repository and user: %q", text)
	}
	shot(ctx2, "access-refused.png")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.backend) != served {
		t.Errorf("mallory's requests reached the backend %d times", len(s.backend)-served)
	}
}
