package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v60/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// maxArchiveRedirects bounds the redirects followed to reach an archive.
const maxArchiveRedirects = 5

// DownloadSource downloads the tarball of commit sha of repo
// (GET /repos/{owner}/{repo}/tarball/{sha}, which redirects to the archive
// host) and extracts it into dir with ExtractTarball. The Authorization
// header is sent to the API host only, never to another host a redirect
// points at. A fork pull request's head SHA is fetchable from the base
// repository. On error dir does not exist.
func (c *Client) DownloadSource(ctx context.Context, repo Repo, sha, dir string, limits ExtractLimits) (ExtractStats, error) {
	if !validSHA(sha) {
		return ExtractStats{}, fmt.Errorf("download source of %s: %q is not a commit SHA", repo, sha)
	}
	g, err := c.rest(ctx, repo)
	if err != nil {
		return ExtractStats{}, err
	}
	body, err := c.openArchive(ctx, g, repo, sha)
	if err != nil {
		return ExtractStats{}, err
	}
	defer body.Close()
	stats, err := ExtractTarball(ctx, body, dir, limits)
	if err != nil {
		return stats, fmt.Errorf("download source of %s@%s: %w", repo, contract.ShortSHA(sha), err)
	}
	return stats, nil
}

// openArchive requests the tarball with the authenticated transport, without
// following redirects, then follows each redirect itself: with credentials
// while it stays on the API's host, without once it leaves.
func (c *Client) openArchive(ctx context.Context, g *gh.Client, repo Repo, sha string) (io.ReadCloser, error) {
	req, err := g.NewRequest("GET", fmt.Sprintf("repos/%s/%s/tarball/%s", repo.Owner, repo.Name, sha), nil)
	if err != nil {
		return nil, err
	}
	req = req.WithContext(ctx)
	authed := &http.Client{
		Transport:     g.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := authed
	for hop := 0; ; hop++ {
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("download source of %s@%s: %w", repo, contract.ShortSHA(sha), err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp.Body, nil
		case resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "":
			loc, err := req.URL.Parse(resp.Header.Get("Location"))
			discard(resp)
			if err != nil {
				return nil, fmt.Errorf("download source of %s@%s: bad redirect: %w", repo, contract.ShortSHA(sha), err)
			}
			if hop >= maxArchiveRedirects {
				return nil, fmt.Errorf("download source of %s@%s: more than %d redirects", repo, contract.ShortSHA(sha), maxArchiveRedirects)
			}
			if !sameOrigin(loc, c.api) {
				client = &http.Client{Transport: c.base, CheckRedirect: authed.CheckRedirect}
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, err
			}
		default:
			err := gh.CheckResponse(resp)
			_ = resp.Body.Close()
			if err == nil {
				err = errors.New(resp.Status)
			}
			return nil, fmt.Errorf("download source of %s@%s: %w", repo, contract.ShortSHA(sha), err)
		}
	}
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// validSHA accepts a full hexadecimal commit SHA (SHA-1 or SHA-256).
func validSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}
