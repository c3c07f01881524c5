package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to a remote Slipway's JSON API (`slipway ls|logs --server`).
type Client struct {
	// BaseURL is the dashboard's URL, e.g. "https://preview.example.com/".
	BaseURL string
	// Token is the dashboard's bearer token (dashboard.token_file).
	Token string
	// HTTP is the client used; nil means http.DefaultClient. Its Timeout
	// must be zero (or long) to follow logs.
	HTTP *http.Client
}

// APIError is an error answer of the API. It matches ErrNotFound,
// ErrUnauthorized or ErrUnsupported with errors.Is, by status.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("slipway API: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("slipway API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is maps the status to the package's errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnsupported:
		return e.Status == http.StatusConflict || e.Status == http.StatusNotImplemented
	}
	return false
}

// Environments lists the environments that were not removed.
func (c *Client) Environments(ctx context.Context) ([]Environment, error) {
	var out EnvironmentList
	if err := c.getJSON(ctx, "api/v1/environments", nil, &out); err != nil {
		return nil, err
	}
	return out.Environments, nil
}

// Environment returns one environment with its timeline and build logs.
func (c *Client) Environment(ctx context.Context, project string) (*EnvironmentDetail, error) {
	var out EnvironmentDetail
	if err := c.getJSON(ctx, "api/v1/environments/"+url.PathEscape(project), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logs copies the logs of project's services ("web-1 | line") to w: of one
// service, or of all with service "". With follow it streams until ctx
// ends or the containers stop.
func (c *Client) Logs(ctx context.Context, project, service string, follow bool, w io.Writer) error {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if follow {
		q.Set("follow", "1")
	}
	return c.copyText(ctx, "api/v1/environments/"+url.PathEscape(project)+"/logs", q, w)
}

// BuildLog copies the build log of sha (or a unique prefix; "" for the
// latest build) to w. With follow it streams a running build until it ends.
func (c *Client) BuildLog(ctx context.Context, project, sha string, follow bool, w io.Writer) error {
	q := url.Values{}
	if sha != "" {
		q.Set("sha", sha)
	}
	if follow {
		q.Set("follow", "1")
	}
	return c.copyText(ctx, "api/v1/environments/"+url.PathEscape(project)+"/build-log", q, w)
}

// Action asks for redeploy, destroy, sleep or wake on project. The result's
// Status says whether the server carried it out (Done) or only accepted it
// (Queued: the controller acts on it shortly; follow the environment's
// phase).
func (c *Client) Action(ctx context.Context, project, action string) (ActionResult, error) {
	req, err := c.request(ctx, http.MethodPost, "api/v1/environments/"+url.PathEscape(project)+"/actions/"+url.PathEscape(action), nil)
	if err != nil {
		return ActionResult{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return ActionResult{}, err
	}
	defer resp.Body.Close()
	var res ActionResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return ActionResult{}, fmt.Errorf("%s %s: decode the answer: %w", req.Method, req.URL.Redacted(), err)
	}
	return res, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	req, err := c.request(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", req.URL.Path, err)
	}
	return nil
}

func (c *Client) copyText(ctx context.Context, path string, q url.Values, w io.Writer) error {
	req, err := c.request(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return nil // the caller stopped following
		}
		return fmt.Errorf("read %s: %w", req.URL.Path, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values) (*http.Request, error) {
	base, err := url.Parse(c.BaseURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[/path]", c.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends req and turns an error status into an *APIError.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &APIError{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ae apiError
	if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
		e.Message = ae.Error
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	return nil, e
}
