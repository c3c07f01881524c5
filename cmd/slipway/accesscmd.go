package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/access"
)

// newAccessCmd manages bypass tokens and share links of a running Slipway
// through its API.
func newAccessCmd(g *globals) *cobra.Command {
	var rem remote
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Manage bypass tokens and share links of private previews (on a Slipway server)",
	}
	cmd.PersistentFlags().StringVar(&rem.server, "server", os.Getenv("SLIPWAY_SERVER"), "the Slipway server's URL (default $SLIPWAY_SERVER)")
	cmd.PersistentFlags().StringVar(&rem.token, "token", os.Getenv("SLIPWAY_TOKEN"), "the dashboard token (default $SLIPWAY_TOKEN)")

	var repo string
	ls := &cobra.Command{
		Use: "ls [--repo O/R]", Short: "List tokens and share links with their expiry", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Tokens []access.Token }
			path := access.TokensPath
			if repo != "" {
				path += "?repo=" + repo
			}
			if err := rem.call(http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tREPO\tPR\tEXPIRES\tSTATE\tBY\tNOTE")
			now := time.Now()
			for _, t := range out.Tokens {
				exp, state := "never", "live"
				if !t.Expires.IsZero() {
					exp = t.Expires.Local().Format(time.DateTime)
					if !now.Before(t.Expires) {
						state = "expired"
					}
				}
				if !t.Revoked.IsZero() {
					state = "revoked"
				}
				pr := "-"
				if t.PR > 0 {
					pr = fmt.Sprint(t.PR)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Kind, t.Repo, pr, exp, state, t.CreatedBy, t.Note)
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&repo, "repo", "", "only this repository's")

	var c access.CreateRequest
	create := func(kind string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			c.Kind, c.CreatedBy = kind, "cli"
			var out access.Created
			if err := rem.call(http.MethodPost, access.TokensPath, c, &out); err != nil {
				return err
			}
			exp := "until revoked"
			if !out.Token.Expires.IsZero() {
				exp = "until " + out.Token.Expires.Local().Format(time.DateTime)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s %s for %s, %s (shown once; send it as the %s header, or add ?%s=<secret> to a preview URL)\n",
				kind, out.Token.ID, out.Token.Repo, exp, access.BypassHeader, access.BypassParam)
			fmt.Fprintln(cmd.OutOrStdout(), out.Secret)
			return nil
		}
	}
	token := &cobra.Command{Use: "token --repo O/R [--note N]", Short: "Create a bypass token for test runners (prints the secret once)", Args: cobra.NoArgs, RunE: create(access.KindBypass)}
	token.Flags().StringVar(&c.Repo, "repo", "", "the repository whose previews it opens")
	token.Flags().StringVar(&c.Note, "note", "", "what it is for")
	token.Flags().StringVar(&c.TTL, "ttl", "", "how long it works (e.g. 720h); default until revoked")
	share := &cobra.Command{Use: "share --repo O/R --pr N [--ttl 48h]", Short: "Create a share link for one pull request's preview", Args: cobra.NoArgs, RunE: create(access.KindShare)}
	share.Flags().StringVar(&c.Repo, "repo", "", "the repository")
	share.Flags().IntVar(&c.PR, "pr", 0, "the pull request")
	share.Flags().StringVar(&c.TTL, "ttl", "48h", "how long it works (at most 720h)")
	share.Flags().StringVar(&c.Note, "note", "", "whom it is for")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token or share link at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rem.call(http.MethodDelete, access.TokensPath+"/"+args[0], nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(ls, token, share, revoke)
	return cmd
}

// call sends one request to the server's API and decodes its JSON answer.
func (r *remote) call(method, path string, in, out any) error {
	if r.server == "" {
		return fmt.Errorf("--server (or SLIPWAY_SERVER) is required")
	}
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(r.server, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
