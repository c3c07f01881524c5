package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

const plantedSecret = "sk_test_planted_4242_do_not_leak"

// secretApp is an app whose page shows whether it received STRIPE_KEY.
func secretApp(version string, job string) githubfake.Files {
	f := app(version)
	f["Dockerfile"] = "FROM slipway-test/busybox:1\nCOPY index.html /www/index.html\nCMD [\"sh\", \"-c\", \"echo \\\"has-key=${STRIPE_KEY:+yes}\\\" > /www/key.txt; exec httpd -f -p 8080 -h /www\"]\n"
	f[".slipway.yml"] = "secrets: [STRIPE_KEY]\n"
	if job != "" {
		f[".slipway.yml"] += "after_deploy:\n  - service: web\n    command: [\"sh\", \"-c\", " + jsonString(job) + "]\n"
	}
	return f
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (h *harness) getPath(n int, path string) (int, string) {
	return dockertest.GetHost(h.proxy.URL+path, fmt.Sprintf("pr-%d.%s", n, h.domain))
}

func (h *harness) lastReactions(n int, author string) []string {
	var out []string
	for _, c := range h.fake.Comments(h.repo, n) {
		if c.Author == author {
			out = nil
			for _, r := range c.Reactions {
				out = append(out, r.Content)
			}
		}
	}
	return out
}

func (h *harness) comment(n int, author, body string) {
	id := h.fake.AddComment(h.repo, n, author, body)
	h.deliver("issue_comment", h.commentEvent(n, id, author, body))
}

// A fork PR by someone without write access builds only after a writer
// approves its head SHA; a push needs a new approval; it never gets secrets.
func TestForkPRNeedsApprovalForEachSHA(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{secrets: map[string]config.Secret{"STRIPE_KEY": {Value: plantedSecret}}})
	h.fake.SetPermission(h.repo, "mallory", githubfake.Read)
	h.fake.SetPermission(h.repo, "bob", githubfake.Read)
	n, sha1 := h.fake.OpenPR(h.repo, githubfake.PR{Author: "mallory", HeadRepo: "mallory/shop", Files: secretApp("fork-1", "")})
	h.deliver("pull_request", h.prEvent("opened", n, "mallory"))
	eventually(t, 20*time.Second, "awaiting approval", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseWaiting)) && strings.Contains(p, "approve"), p
	})

	// Approval attempts by people without write access change nothing.
	h.comment(n, "mallory", "/slipway approve")
	h.fake.SetLabels(h.repo, n, "slipway:approved")
	ev := h.prEvent("labeled", n, "bob")
	ev["label"] = map[string]any{"name": "slipway:approved"}
	h.deliver("pull_request", ev)
	eventually(t, 10*time.Second, "a refusal", func() (bool, string) {
		r := h.lastReactions(n, "mallory")
		return len(r) > 0 && r[len(r)-1] == "confused", fmt.Sprint(r)
	})
	time.Sleep(time.Second)
	if builds := h.counter("slipway_builds_total"); builds != 0 {
		t.Fatalf("%v builds before a writer approved", builds)
	}
	if _, ok, _ := h.store.Approval(context.Background(), h.repo, n, sha1); ok {
		t.Fatal("an approval by a reader was recorded")
	}

	// A writer approves: it builds, without the secret.
	h.comment(n, "alice", "/slipway approve")
	h.waitServes(n, "version fork-1")
	if _, body := h.getPath(n, "/key.txt"); !strings.Contains(body, "has-key=\n") && strings.TrimSpace(body) != "has-key=" {
		t.Errorf("untrusted environment key.txt %q: it received the secret", body)
	}
	if ins, err := h.cli.ContainerInspect(context.Background(), contract.ContainerName(h.project(n), "web", 1)); err == nil {
		for _, e := range ins.Config.Env {
			if strings.Contains(e, plantedSecret) {
				t.Errorf("untrusted container env holds the secret: %s", e)
			}
		}
	}

	// A push needs a new approval: the old environment goes, nothing builds.
	builds := h.counter("slipway_builds_total")
	h.fake.Push(h.repo, n, secretApp("fork-2", ""))
	h.deliver("pull_request", h.prEvent("synchronize", n, "mallory"))
	h.waitGone(n)
	time.Sleep(time.Second)
	if again := h.counter("slipway_builds_total"); again != builds {
		t.Errorf("the new SHA was built without approval")
	}
	h.comment(n, "alice", "/slipway approve")
	h.waitServes(n, "version fork-2")
}

// Secrets reach trusted PRs and never appear in what Slipway writes: build
// logs, comments, statuses, status pages.
func TestSecretsAreMaskedEverywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{secrets: map[string]config.Secret{"STRIPE_KEY": {Value: plantedSecret}}})
	n, sha := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: secretApp("trusted", "echo job sees $STRIPE_KEY")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version trusted")
	if _, body := h.getPath(n, "/key.txt"); !strings.Contains(body, "has-key=yes") {
		t.Errorf("trusted environment did not get its secret: %q", body)
	}
	// The route goes live once the web is healthy; the job runs after that.
	eventually(t, 30*time.Second, "the job's masked line in the build log", func() (bool, string) {
		log, err := h.store.BuildLog(context.Background(), h.project(n), sha, 0)
		return err == nil && strings.Contains(log.String(), "job sees ***"), fmt.Sprint(err)
	})

	// A failing job prints the secret: the failure report masks it.
	h.fake.Push(h.repo, n, secretApp("leaky", "echo leaking $STRIPE_KEY; exit 3"))
	h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	eventually(t, 60*time.Second, "failed phase", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseFailed)), p
	})
	eventually(t, 10*time.Second, "the failure in the comment", func() (bool, string) {
		for _, c := range h.fake.Comments(h.repo, n) {
			if strings.Contains(c.Body, "leaking ***") {
				return true, ""
			}
		}
		return false, "no masked line in comments"
	})
	for _, r := range h.fake.Requests() {
		if b, _ := json.Marshal(r.Body); strings.Contains(string(b), plantedSecret) {
			t.Errorf("%s %s sent the secret to GitHub", r.Method, r.Path)
		}
	}
	envs, _ := h.store.Environments(context.Background())
	for _, e := range envs {
		if b, _ := json.Marshal(e); strings.Contains(string(b), plantedSecret) {
			t.Errorf("the store's environment record holds the secret")
		}
	}
	logs, _ := h.store.BuildLogs(context.Background(), h.project(n))
	for _, l := range logs {
		full, _ := h.store.BuildLog(context.Background(), h.project(n), l.SHA, 0)
		if strings.Contains(full.String(), plantedSecret) {
			t.Errorf("build log of %s holds the secret", l.SHA[:7])
		}
	}
	// The previous environment kept running; its host serves, and no page shows the secret.
	if _, body := h.get(n); strings.Contains(body, plantedSecret) {
		t.Error("the preview host shows the secret")
	}
}

// ChatOps: writers act, readers are refused, unknown commands get help.
func TestChatOpsCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.fake.SetPermission(h.repo, "bob", githubfake.Read)
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("ops")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version ops")

	h.comment(n, "bob", "/slipway destroy")
	eventually(t, 10*time.Second, "bob refused", func() (bool, string) {
		r := h.lastReactions(n, "bob")
		return len(r) > 0 && r[len(r)-1] == "confused", fmt.Sprint(r)
	})
	if code, _ := h.get(n); code != 200 {
		t.Fatalf("a reader's destroy took effect: %d", code)
	}

	h.comment(n, "alice", "/slipway frobnicate")
	eventually(t, 10*time.Second, "a help reply", func() (bool, string) {
		cs := h.fake.Comments(h.repo, n)
		last := cs[len(cs)-1]
		return strings.Contains(last.Body, "/slipway redeploy") && last.Author != "alice", firstLine(last.Body)
	})

	h.comment(n, "alice", "/slipway keep forever")
	eventually(t, 10*time.Second, "keep recorded", func() (bool, string) {
		e, err := h.store.Environment(context.Background(), h.project(n))
		return err == nil && e.Keep.Forever && e.Keep.By == "alice", fmt.Sprint(e.Keep)
	})

	h.comment(n, "alice", "/slipway destroy")
	h.waitGone(n)
	h.ctrl.Enqueue(keyOf(h, n)) // a resync must not bring it back
	time.Sleep(2 * time.Second)
	if code, _ := h.get(n); code == 200 {
		t.Fatal("a destroyed environment came back without a push or redeploy")
	}
	h.comment(n, "alice", "/slipway redeploy")
	h.waitServes(n, "version ops")
	if r := h.lastReactions(n, "alice"); len(r) == 0 || r[len(r)-1] != "+1" {
		t.Errorf("reactions on the last command %v, want ending +1", r)
	}
}
