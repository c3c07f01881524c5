package github

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	sha1 = "abc1234def5678901234567890abcdef12345678"
	sha2 = "fedcba9876543210fedcba9876543210fedcba98"
)

func TestRenderCommentReadyExact(t *testing.T) {
	got := RenderComment(Status{
		PR: 7, SHA: sha1, Phase: PhaseReady,
		Services: []Service{
			{Name: "api", URL: "https://api-pr-7.preview.example.com"},
			{Name: "web", URL: "https://pr-7.preview.example.com", Primary: true},
		},
		BuildDuration: 83*time.Second + 400*time.Millisecond,
		LogURL:        "https://slipway.example.com/envs/acme-web-pr-7/log",
	})
	want := `<!-- slipway:preview -->
### ✅ Preview ready

| Service | URL |
| --- | --- |
| **` + "`web`" + `** | https://pr-7.preview.example.com |
| ` + "`api`" + ` | https://api-pr-7.preview.example.com |

Commit ` + "`abc1234def56`" + ` · Phase: ready · Build took 1m23s · [Build log](https://slipway.example.com/envs/acme-web-pr-7/log)

<sub>Managed by Slipway · comment ` + "`/slipway help`" + ` for commands</sub>
`
	if got != want {
		t.Errorf("comment:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderComment(t *testing.T) {
	var longLog strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&longLog, "\x1b[31mstep %03d\x1b[0m output\n", i)
	}
	longLog.WriteString("npm ERR! ```code fence in the log```\n")

	cases := []struct {
		name    string
		status  Status
		want    []string
		notWant []string
	}{
		{
			name:    "queued before anything is known",
			status:  Status{PR: 1, SHA: sha1, Phase: PhaseQueued},
			want:    []string{StickyMarker + "\n### ⏳ Preview queued", "Commit `abc1234def56` · Phase: queued", "/slipway help"},
			notWant: []string{"| Service |", "Build took", "Build log"},
		},
		{
			name:   "queued says why it waits",
			status: Status{PR: 1, SHA: sha1, Phase: PhaseQueued, Reason: "waiting: 2 environments are running (limit 2); 0 ahead in line"},
			want:   []string{"### ⏳ Preview queued", "\nwaiting: 2 environments are running (limit 2); 0 ahead in line\n"},
		},
		{
			name:   "ready notes withheld secrets",
			status: Status{PR: 1, SHA: sha1, Phase: PhaseReady, Reason: "secrets withheld from this untrusted pull request: STRIPE_KEY"},
			want:   []string{"### ✅ Preview ready", "secrets withheld from this untrusted pull request: STRIPE_KEY"},
		},
		{
			name:   "building keeps the URL table",
			status: Status{PR: 1, SHA: sha1, Phase: PhaseBuilding, Services: []Service{{Name: "web", URL: "https://pr-1.x.dev", Primary: true}}},
			want:   []string{"### 🔨 Building preview", "| **`web`** | https://pr-1.x.dev |", "Phase: building"},
		},
		{
			name:   "deploying",
			status: Status{PR: 1, SHA: sha1, Phase: PhaseDeploying, BuildDuration: 1500 * time.Millisecond},
			want:   []string{"### 🚀 Deploying preview", "Build took 2s"},
		},
		{
			name: "failed with step, service and log tail",
			status: Status{PR: 1, SHA: sha1, Phase: PhaseFailed, Reason: "exit code 1",
				Failure: &Failure{Step: "build", Service: "api", Log: longLog.String()}},
			want: []string{
				"### ❌ Preview failed", "**Step:** `build` · **Service:** `api`", "**Error:** `exit code 1`",
				"<details open><summary>Last lines of the log</summary>",
				"````text\n", "step 100 output\nnpm ERR! ```code fence in the log```\n````",
			},
			notWant: []string{"step 001", "step 060", "\x1b[", "| Service |"},
		},
		{
			name:    "failed without a log",
			status:  Status{PR: 1, SHA: sha1, Phase: PhaseFailed, Reason: "no compose file", Failure: &Failure{Step: "load"}},
			want:    []string{"**Step:** `load`", "**Error:** `no compose file`"},
			notWant: []string{"<details", "**Service:**"},
		},
		{
			name:    "untrusted text cannot mention or format",
			status:  Status{PR: 1, SHA: sha1, Phase: PhaseFailed, Reason: "ping @acme/owners `oops` **bold**\nsecond line"},
			want:    []string{"**Error:** ``ping @acme/owners `oops` **bold** second line``"},
			notWant: []string{"\nsecond line"},
		},
		{
			name:    "removed after close",
			status:  Status{PR: 1, SHA: sha2, Phase: PhaseRemoved, Reason: "the pull request was closed", Services: []Service{{Name: "web", URL: "https://pr-1.x.dev"}}},
			want:    []string{"### 🧹 Preview removed", "The preview environment was removed: `the pull request was closed`.", "Commit `fedcba987654`"},
			notWant: []string{"https://pr-1.x.dev", "| Service |"},
		},
		{
			name:   "removed without a SHA",
			status: Status{PR: 1, Phase: PhaseRemoved},
			want:   []string{"The preview environment was removed.\n", "Phase: removed"},
		},
		{
			name:   "awaiting approval says how to approve",
			status: Status{PR: 9, SHA: sha1, Phase: PhaseAwaitingApproval},
			want: []string{"### 🔒 Preview awaiting approval", "comment `/slipway approve`", "add the label `slipway:approved`",
				"covers commit `abc1234def56` only: a new push needs a new approval"},
			notWant: []string{"| Service |"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := RenderComment(tc.status)
			if !strings.HasPrefix(got, StickyMarker+"\n") {
				t.Errorf("comment does not start with the marker:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("comment lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("comment contains %q:\n%s", w, got)
				}
			}
			if again := RenderComment(tc.status); again != got {
				t.Error("RenderComment is not deterministic")
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	cases := []struct {
		name             string
		log              string
		maxLines, nBytes int
		want             string
	}{
		{"last lines", "a\nb\nc\nd\n", 2, 100, "c\nd"},
		{"byte bound", "aaaa\nbbbb\ncccc\n", 10, 10, "bbbb\ncccc"},
		{"progress lines", "pull 10%\rpull 50%\rpull 100%\ndone\n", 10, 100, "pull 100%\ndone"},
		{"ansi colours", "\x1b[1;32mok\x1b[0m\n", 10, 100, "ok"},
		{"one huge line keeps its end", strings.Repeat("x", 50) + "END", 10, 12, "…xxxxxxxEND"},
		{"empty", "", 10, 100, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := LogTail(tc.log, tc.maxLines, tc.nBytes)
			if got != tc.want {
				t.Errorf("LogTail = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEnvironmentNames(t *testing.T) {
	for _, tc := range []struct {
		env     string
		pr      int
		service string
		ok      bool
	}{
		{"pr-5", 5, "", true},
		{"pr-12/web", 12, "web", true},
		{"pr-5/", 0, "", false},
		{"pr-05", 0, "", false},
		{"pr-", 0, "", false},
		{"pr-x", 0, "", false},
		{"production", 0, "", false},
		{"preview/pr-5", 0, "", false},
	} {
		pr, svc, ok := ParseEnvironment(tc.env)
		if pr != tc.pr || svc != tc.service || ok != tc.ok {
			t.Errorf("ParseEnvironment(%q) = %d, %q, %v; want %d, %q, %v", tc.env, pr, svc, ok, tc.pr, tc.service, tc.ok)
		}
		if tc.ok && Environment(pr, svc) != tc.env {
			t.Errorf("Environment(%d, %q) = %q, want %q", pr, svc, Environment(pr, svc), tc.env)
		}
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", 200)
	if got := oneLine(long, 140); len([]rune(got)) != 140 || !strings.HasSuffix(got, "…") {
		t.Errorf("oneLine cut to %d runes: %q", len([]rune(got)), got)
	}
	if got := oneLine("a\n  b\tc  ", 140); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
}
