package github

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/text"
)

// Phase is where an environment is in its life, as reported to GitHub.
type Phase string

// The phases the reconciler reports.
const (
	PhaseQueued           Phase = "queued"
	PhaseBuilding         Phase = "building"
	PhaseDeploying        Phase = "deploying"
	PhaseReady            Phase = "ready"
	PhaseFailed           Phase = "failed"
	PhaseRemoved          Phase = "removed"
	PhaseAwaitingApproval Phase = "awaiting-approval"
)

func (p Phase) valid() bool {
	switch p {
	case PhaseQueued, PhaseBuilding, PhaseDeploying, PhaseReady, PhaseFailed, PhaseRemoved, PhaseAwaitingApproval:
		return true
	}
	return false
}

// ApprovalLabel is the label a writer applies to approve a fork PR's head
// commit. It is fixed: the controller credits it and the awaiting-approval
// note names it, so both read this one constant.
const ApprovalLabel = "slipway:approved"

// Service is one exposed service of an environment.
type Service struct {
	Name    string
	URL     string
	Primary bool
}

// Failure says where a failed environment failed.
type Failure struct {
	// Step is the step that failed: "fetch source", "build", "up", "after_deploy", ...
	Step string
	// Service is the service the step failed for, if any.
	Service string
	// Log is the step's output; the comment shows its last lines.
	Log string
	// Internal marks a failure of Slipway or the host rather than of the
	// pull request's code; GitHub then shows "error" instead of "failure".
	Internal bool
}

// Status is what the reconciler reports on a phase change.
type Status struct {
	Repo Repo
	PR   int
	// SHA is the head SHA the phase is about. It may be empty only for PhaseRemoved.
	SHA   string
	Phase Phase
	// Services are the exposed services with their URLs; the primary one
	// comes first in the comment and gives the commit status its link.
	Services []Service
	// BuildDuration is how long the build took (shown once known).
	BuildDuration time.Duration
	// Reason is one line: why it failed, why it was removed ("the pull
	// request was closed"), or why it waits.
	Reason string
	// Failure is set in PhaseFailed.
	Failure *Failure
	// LogURL links the build log on the dashboard, when one is configured.
	LogURL string
}

// Comment bounds.
const (
	logTailLines = 40
	logTailBytes = 4000
)

// RenderComment renders the sticky comment for s. It is a pure function of
// s: the Reporter masks secrets in s before calling it.
func RenderComment(s Status) string {
	var b strings.Builder
	b.WriteString(StickyMarker + "\n")
	fmt.Fprintf(&b, "### %s\n\n", headline(s.Phase))

	services := orderedServices(s.Services)
	if s.Phase != PhaseRemoved && s.Phase != PhaseAwaitingApproval && hasURL(services) {
		b.WriteString("| Service | URL |\n| --- | --- |\n")
		for _, svc := range services {
			name := codeSpan(svc.Name)
			if svc.Primary || len(services) == 1 {
				name = "**" + name + "**"
			}
			url := strings.ReplaceAll(svc.URL, "|", "%7C")
			if url == "" {
				url = "—"
			}
			fmt.Fprintf(&b, "| %s | %s |\n", name, url)
		}
		b.WriteString("\n")
	}

	var facts []string
	if s.SHA != "" {
		facts = append(facts, "Commit "+codeSpan(contract.ShortSHA(s.SHA)))
	}
	facts = append(facts, "Phase: "+string(s.Phase))
	if s.BuildDuration > 0 {
		facts = append(facts, "Build took "+formatDuration(s.BuildDuration))
	}
	if s.LogURL != "" {
		facts = append(facts, fmt.Sprintf("[Build log](%s)", strings.ReplaceAll(s.LogURL, ")", "%29")))
	}
	b.WriteString(strings.Join(facts, " · ") + "\n")

	switch s.Phase {
	case PhaseFailed:
		b.WriteString("\n")
		var where []string
		if s.Failure != nil && s.Failure.Step != "" {
			where = append(where, "**Step:** "+codeSpan(s.Failure.Step))
		}
		if s.Failure != nil && s.Failure.Service != "" {
			where = append(where, "**Service:** "+codeSpan(s.Failure.Service))
		}
		if len(where) > 0 {
			b.WriteString(strings.Join(where, " · ") + "\n\n")
		}
		if s.Reason != "" {
			b.WriteString("**Error:** " + codeSpan(oneLine(s.Reason, 500)) + "\n\n")
		}
		if s.Failure != nil {
			if tail := LogTail(s.Failure.Log, logTailLines, logTailBytes); tail != "" {
				fence := fenceFor(tail)
				b.WriteString("<details open><summary>Last lines of the log</summary>\n\n")
				fmt.Fprintf(&b, "%stext\n%s\n%s\n\n</details>\n", fence, tail, fence)
			}
		}
	case PhaseRemoved:
		b.WriteString("\nThe preview environment was removed")
		if s.Reason != "" {
			b.WriteString(": " + codeSpan(oneLine(s.Reason, 200)))
		}
		b.WriteString(".\n")
	case PhaseAwaitingApproval:
		b.WriteString("\nThis pull request comes from a fork or from an author without write access, " +
			"so its preview is not built until a maintainer approves it.\n" +
			"A user with write access can comment `/slipway approve` or add the label " + codeSpan(ApprovalLabel) + ". ")
		if s.SHA != "" {
			b.WriteString("The approval covers commit " + codeSpan(contract.ShortSHA(s.SHA)) + " only: a new push needs a new approval.\n")
		} else {
			b.WriteString("The approval covers the current commit only: a new push needs a new approval.\n")
		}
		if s.Reason != "" {
			b.WriteString("\n" + codeSpan(oneLine(s.Reason, 200)) + "\n")
		}
	default:
		// Queued, building, deploying, ready: a note such as why it waits
		// ("2 environments are running (limit 2)") or which secrets an
		// untrusted PR did not get.
		if s.Reason != "" {
			b.WriteString("\n" + oneLine(s.Reason, 300) + "\n")
		}
	}
	b.WriteString("\n<sub>Managed by Slipway · comment `/slipway help` for commands</sub>\n")
	return b.String()
}

func headline(p Phase) string {
	switch p {
	case PhaseQueued:
		return "⏳ Preview queued"
	case PhaseBuilding:
		return "🔨 Building preview"
	case PhaseDeploying:
		return "🚀 Deploying preview"
	case PhaseReady:
		return "✅ Preview ready"
	case PhaseFailed:
		return "❌ Preview failed"
	case PhaseRemoved:
		return "🧹 Preview removed"
	case PhaseAwaitingApproval:
		return "🔒 Preview awaiting approval"
	}
	return "Preview: " + string(p)
}

// orderedServices puts the primary service first, keeping the others' order.
func orderedServices(in []Service) []Service {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Service) int {
		switch {
		case a.Primary == b.Primary:
			return 0
		case a.Primary:
			return -1
		}
		return 1
	})
	return out
}

func hasURL(svcs []Service) bool {
	return slices.ContainsFunc(svcs, func(s Service) bool { return s.URL != "" })
}

func primaryURL(svcs []Service) string {
	for _, s := range orderedServices(svcs) {
		if s.URL != "" {
			return s.URL
		}
	}
	return ""
}

func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// codeSpan renders s as inline code, safe whatever s holds: no mention,
// link or markup inside is interpreted.
func codeSpan(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	delim := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return delim + s + delim
}

// fenceFor returns a code fence longer than any backtick run in s, so s
// cannot close it.
func fenceFor(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// LogTail returns the last lines of log, at most maxLines lines and maxBytes
// bytes, with terminal escapes removed and carriage-return progress lines
// reduced to what was shown last. An overlong single line keeps its end.
func LogTail(log string, maxLines, maxBytes int) string {
	log = text.StripANSI(log)
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	var out []string
	size := 0
	for i := len(lines) - 1; i >= 0 && len(out) < maxLines; i-- {
		line := strings.TrimRight(lines[i], "\r")
		if j := strings.LastIndex(line, "\r"); j >= 0 {
			line = line[j+1:]
		}
		if size+len(line)+1 > maxBytes {
			if len(out) == 0 { // one huge line: keep its end
				cut := len(line) - maxBytes + 2
				for cut < len(line) && !isRuneStart(line[cut]) {
					cut++
				}
				out = append(out, "…"+line[cut:])
			}
			break
		}
		out = append(out, line)
		size += len(line) + 1
	}
	slices.Reverse(out)
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
