package github

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		body    string
		want    Command
		ok      bool
		problem string // substring of the CommandError; "" means no error
	}{
		{body: "/slipway redeploy", want: Command{Kind: CommandRedeploy}, ok: true},
		{body: "  /slipway   destroy  \n\nthanks!", want: Command{Kind: CommandDestroy}, ok: true},
		{body: "\n\n/slipway approve\r\n", want: Command{Kind: CommandApprove}, ok: true},
		{body: "/slipway help", want: Command{Kind: CommandHelp}, ok: true},
		{body: "/Slipway REDEPLOY", ok: false}, // the prefix is case-sensitive, like GitHub's own slash commands
		{body: "/slipway Redeploy", want: Command{Kind: CommandRedeploy}, ok: true},
		{body: "/slipway keep 7d", want: Command{Kind: CommandKeep, Keep: 7 * day}, ok: true},
		{body: "/slipway keep 48h", want: Command{Kind: CommandKeep, Keep: 48 * time.Hour}, ok: true},
		{body: "/slipway keep 1d12h", want: Command{Kind: CommandKeep, Keep: 36 * time.Hour}, ok: true},
		{body: "/slipway keep 2w", want: Command{Kind: CommandKeep, Keep: 14 * day}, ok: true},
		{body: "/slipway keep 90m", want: Command{Kind: CommandKeep, Keep: 90 * time.Minute}, ok: true},
		{body: "/slipway keep 365d", want: Command{Kind: CommandKeep, Keep: 365 * day}, ok: true},
		{body: "/slipway keep forever", want: Command{Kind: CommandKeep, Forever: true}, ok: true},
		{body: "/slipway share", want: Command{Kind: CommandShare, Share: 48 * time.Hour}, ok: true},
		{body: "/slipway share 7d", want: Command{Kind: CommandShare, Share: 7 * day}, ok: true},
		{body: "/slipway share 31d", ok: true, problem: "30d maximum of a share link"},
		{body: "/slipway share 1d 2d", ok: true, problem: "at most one argument"},
		{body: "/slipway\tkeep\tFOREVER", want: Command{Kind: CommandKeep, Forever: true}, ok: true},

		{body: "/slipway", ok: true, problem: "Missing command"},
		{body: "/slipway deploy", ok: true, problem: "Unknown command `/slipway deploy`"},
		{body: "/slipway keep", ok: true, problem: "takes one argument"},
		{body: "/slipway keep 7d 8d", ok: true, problem: "takes one argument"},
		{body: "/slipway keep 7", ok: true, problem: "not a duration"},
		{body: "/slipway keep d", ok: true, problem: "not a duration"},
		{body: "/slipway keep 7y", ok: true, problem: "unknown unit"},
		{body: "/slipway keep 0d", ok: true, problem: "longer than zero"},
		{body: "/slipway keep -1d", ok: true, problem: "not a duration"},
		{body: "/slipway keep 366d", ok: true, problem: "365d maximum"},
		{body: "/slipway keep 99999999999999999999w", ok: true, problem: "365d maximum"},
		{body: "/slipway keep 53w", ok: true, problem: "365d maximum"},
		{body: "/slipway redeploy now", ok: true, problem: "takes no arguments"},
		{body: "/slipway @everyone`x`", ok: true, problem: "Unknown command `/slipway everyonex`"},

		{body: "please /slipway redeploy", ok: false},
		{body: "/slipwayredeploy", ok: false},
		{body: "> /slipway destroy\nquoted", ok: false},
		{body: "", ok: false},
		{body: "LGTM", ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			got, ok, err := ParseCommand(tc.body)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got != tc.want {
					t.Errorf("command = %+v, want %+v", got, tc.want)
				}
				return
			}
			var ce *CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CommandError", err)
			}
			if !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("error %q does not say %q", err, tc.problem)
			}
			if !strings.Contains(err.Error(), "/slipway keep forever") {
				t.Errorf("error reply carries no help: %q", err)
			}
			if strings.Contains(err.Error(), "@") {
				t.Errorf("reply echoes a mention: %q", err)
			}
		})
	}
}
