package github

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/internal/text"
)

// CommandPrefix starts every ChatOps command.
const CommandPrefix = "/slipway"

// CommandKind is what a ChatOps command asks for.
type CommandKind string

// The ChatOps commands.
const (
	CommandRedeploy CommandKind = "redeploy"
	CommandDestroy  CommandKind = "destroy"
	CommandKeep     CommandKind = "keep"
	CommandApprove  CommandKind = "approve"
	CommandHelp     CommandKind = "help"
	CommandShare    CommandKind = "share"
)

// MaxShare bounds "/slipway share <duration>"; DefaultShare is its
// duration when none is given.
const (
	MaxShare     = 30 * 24 * time.Hour
	DefaultShare = 48 * time.Hour
)

// MaxKeep bounds "/slipway keep <duration>"; longer is "keep forever".
const MaxKeep = 365 * 24 * time.Hour

// Command is a parsed ChatOps command.
type Command struct {
	Kind CommandKind
	// Keep is the new TTL for CommandKeep, unless Forever.
	Keep time.Duration
	// Forever pins the environment ("/slipway keep forever").
	Forever bool
	// Share is how long the share link of CommandShare works.
	Share time.Duration
}

// HelpText is the reply to "/slipway help" and the body of every
// CommandError.
const HelpText = "Slipway commands (for users with write access):\n\n" +
	"- `/slipway redeploy` rebuilds and redeploys this pull request's preview\n" +
	"- `/slipway destroy` removes the preview\n" +
	"- `/slipway keep 7d` keeps the preview for 7 days without a push (units m, h, d, w; at most 365d)\n" +
	"- `/slipway keep forever` keeps it until the pull request is closed\n" +
	"- `/slipway approve` lets the preview of this fork pull request build, for its current commit\n" +
	"- `/slipway share 48h` replies with a link that opens this private preview without signing in, for 48 hours (at most 30d)\n" +
	"- `/slipway help` shows this list"

// CommandError is a comment that starts with /slipway but is not a valid
// command. Its Error text is a short reply for the comment thread.
type CommandError struct {
	Problem string
}

func (e *CommandError) Error() string {
	return e.Problem + "\n\n" + HelpText
}

// ParseCommand reads a ChatOps command from a comment body. Only the first
// non-blank line counts, and it must start with "/slipway" as a word; any
// other comment is not a command (ok false, err nil). A comment that starts
// with /slipway but names an unknown command or bad arguments returns a
// *CommandError whose text is a short help reply.
func ParseCommand(body string) (cmd Command, ok bool, err error) {
	line := text.FirstLine(body, 0)
	rest, found := strings.CutPrefix(line, CommandPrefix)
	if !found || rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return Command{}, false, nil
	}
	args := strings.Fields(strings.ToLower(rest))
	if len(args) == 0 {
		return Command{}, true, &CommandError{Problem: "Missing command after `/slipway`."}
	}
	verb, args := CommandKind(args[0]), args[1:]
	noArgs := func() (Command, bool, error) {
		if len(args) > 0 {
			return Command{}, true, &CommandError{Problem: fmt.Sprintf("`/slipway %s` takes no arguments.", verb)}
		}
		return Command{Kind: verb}, true, nil
	}
	switch verb {
	case CommandRedeploy, CommandDestroy, CommandApprove, CommandHelp:
		return noArgs()
	case CommandKeep:
		if len(args) != 1 {
			return Command{}, true, &CommandError{Problem: "`/slipway keep` takes one argument: a duration such as `7d` or `48h`, or `forever`."}
		}
		if args[0] == "forever" {
			return Command{Kind: CommandKeep, Forever: true}, true, nil
		}
		d, err := ParseKeepDuration(args[0])
		if err != nil {
			return Command{}, true, &CommandError{Problem: fmt.Sprintf("`/slipway keep %s`: %v.", sanitizeArg(args[0]), err)}
		}
		return Command{Kind: CommandKeep, Keep: d}, true, nil
	case CommandShare:
		if len(args) > 1 {
			return Command{}, true, &CommandError{Problem: "`/slipway share` takes at most one argument: how long the link works, such as `48h` or `7d`."}
		}
		if len(args) == 0 {
			return Command{Kind: CommandShare, Share: DefaultShare}, true, nil
		}
		d, err := ParseKeepDuration(args[0])
		if err == nil && d > MaxShare {
			err = fmt.Errorf("longer than the %dd maximum of a share link", MaxShare/(24*time.Hour))
		}
		if err != nil {
			return Command{}, true, &CommandError{Problem: fmt.Sprintf("`/slipway share %s`: %v.", sanitizeArg(args[0]), err)}
		}
		return Command{Kind: CommandShare, Share: d}, true, nil
	}
	return Command{}, true, &CommandError{Problem: fmt.Sprintf("Unknown command `/slipway %s`.", sanitizeArg(string(verb)))}
}

// sanitizeArg keeps a user's word safe to echo inside a code span.
func sanitizeArg(s string) string {
	s = strings.NewReplacer("`", "", "@", "", "\r", "").Replace(s)
	if r := []rune(s); len(r) > 32 {
		s = string(r[:32]) + "…"
	}
	return s
}

// ParseKeepDuration parses a TTL such as "7d", "48h", "90m", "2w" or a
// combination ("1d12h"): positive, at most MaxKeep.
func ParseKeepDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("not a duration (use a number and a unit: m, h, d or w)")
		}
		var unit time.Duration
		switch rest[i] {
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'w':
			unit = 7 * 24 * time.Hour
		default:
			return 0, fmt.Errorf("unknown unit %q (use m, h, d or w)", rest[i])
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64(MaxKeep/unit) {
			return 0, fmt.Errorf("longer than the %dd maximum", MaxKeep/(24*time.Hour))
		}
		total += time.Duration(n) * unit
		if total > MaxKeep {
			return 0, fmt.Errorf("longer than the %dd maximum", MaxKeep/(24*time.Hour))
		}
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("must be longer than zero")
	}
	return total, nil
}
