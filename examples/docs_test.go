package examples_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	gh "github.com/slipwayhq/slipway/controller/github"
)

// docs/github.md shows the sticky comment as Slipway renders it, and lists
// the commands Slipway understands; these tests keep both true.

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStickyCommentsInDocs(t *testing.T) {
	doc := readDoc(t, "github.md")
	const sha = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"
	repo := gh.Repo{Owner: "acme", Name: "webshop"}
	cases := map[string]gh.Status{
		"ready": {Repo: repo, PR: 7, SHA: sha, Phase: gh.PhaseReady,
			Services: []gh.Service{
				{Name: "api", URL: "https://api-pr-7.preview.example.com"},
				{Name: "web", URL: "https://pr-7.preview.example.com", Primary: true},
			},
			BuildDuration: 48 * time.Second,
			LogURL:        "https://preview.example.com/environments/acme-webshop-pr-7?sha=" + sha + "#build-log"},
		"failed": {Repo: repo, PR: 7, SHA: sha, Phase: gh.PhaseFailed,
			Services: []gh.Service{{Name: "web", URL: "https://pr-7.preview.example.com", Primary: true}},
			Reason:   "build failed for api: npm ci exited with code 1",
			Failure: &gh.Failure{Step: "build", Service: "api", Log: "Step 4/7 : RUN npm ci --omit=dev\n" +
				"npm ERR! code EUSAGE\n" +
				"npm ERR! The `npm ci` command can only install with an existing package-lock.json"}},
	}
	for name, status := range cases {
		re := regexp.MustCompile("(?s)<!-- sticky comment: " + name + " -->\n````markdown\n(.*?)````")
		m := re.FindStringSubmatch(doc)
		if m == nil {
			t.Errorf("docs/github.md has no sticky comment example %q", name)
			continue
		}
		if got := gh.RenderComment(status); got != m[1] {
			t.Errorf("the %s comment in docs/github.md is not what Slipway renders:\n--- doc\n%s\n--- rendered\n%s", name, m[1], got)
		}
	}
}

func TestCommandsInDocs(t *testing.T) {
	doc := readDoc(t, "github.md")
	section := doc[strings.Index(doc, "## Commands in comments"):]
	section = section[:strings.Index(section, "\n## ")]
	cmds := regexp.MustCompile("(?m)^\\| `(/slipway [^`]+)` \\|").FindAllStringSubmatch(section, -1)
	want := map[gh.CommandKind]bool{gh.CommandRedeploy: false, gh.CommandDestroy: false, gh.CommandKeep: false, gh.CommandApprove: false, gh.CommandHelp: false}
	for _, m := range cmds {
		c, ok, err := gh.ParseCommand(m[1])
		if !ok || err != nil {
			t.Errorf("documented command %q: ok=%v err=%v", m[1], ok, err)
			continue
		}
		want[c.Kind] = true
	}
	for kind, seen := range want {
		if !seen {
			t.Errorf("command %s is not documented", kind)
		}
	}
	// The keep forms the table promises.
	for _, body := range []string{"/slipway keep 1d12h", "/slipway keep 30m", "/slipway keep 2w", "/slipway keep 365d"} {
		if _, ok, err := gh.ParseCommand(body); !ok || err != nil {
			t.Errorf("%q: ok=%v err=%v", body, ok, err)
		}
	}
	if _, _, err := gh.ParseCommand("/slipway keep 366d"); err == nil {
		t.Error("keep 366d accepted; the doc says at most 365d")
	}
}
