package swarm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/distribution/reference"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Registry is the registry the built images go through: the engine pushes
// to it (through the Docker daemon) and deletes a preview's tags from it
// (through the registry's HTTP API, which must allow deletes).
type Registry struct {
	// Address is host[:port], as the nodes' engines pull from it.
	Address string
	// API is the registry's HTTP API as this process reaches it
	// (scheme://host[:port]); empty for Address, over http for a loopback
	// address and https otherwise.
	API string
	// User and Password log in; empty for a registry without authentication.
	User, Password string
	// HTTP is the client for the registry API. Default http.DefaultClient.
	HTTP *http.Client
}

// Repository is the registry repository of a built service's images.
func (r *Registry) Repository(project, service string) string {
	return r.Address + "/" + project + "-" + service
}

// base is the registry API's URL without a path: API when set, else
// Address over http for a loopback registry (as the Docker daemon allows
// without configuration) and https otherwise.
func (r *Registry) base() string {
	if r.API != "" {
		return strings.TrimSuffix(r.API, "/")
	}
	return r.scheme() + "://" + r.Address
}

// scheme is http for a loopback registry (as the Docker daemon allows
// without configuration) and https otherwise.
func (r *Registry) scheme() string {
	host := r.Address
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return "http"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "http"
	}
	return "https"
}

// auth is the X-Registry-Auth value the daemon wants for a push ("" for
// no registry or one without authentication).
func (r *Registry) auth() string {
	if r == nil || r.User == "" {
		return ""
	}
	b, _ := json.Marshal(map[string]string{"username": r.User, "password": r.Password, "serveraddress": r.Address})
	return base64.URLEncoding.EncodeToString(b)
}

// push tags local as <repository>:<tag>, pushes it, and returns the
// reference by digest (<repository>:<tag>@sha256:…) that tasks run.
func (e *Engine) push(ctx context.Context, local, repository, tag string, log io.Writer) (string, error) {
	ref := repository + ":" + tag
	if err := e.docker.ImageTag(ctx, local, ref); err != nil {
		return "", fmt.Errorf("tag %s as %s: %w", local, ref, err)
	}
	rc, err := e.docker.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: e.opts.Registry.auth()})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	digest := ""
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("push %s: read progress: %w", ref, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("push %s: %s", ref, m.Error.Message)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the daemon reported no digest", ref)
	}
	fmt.Fprintf(log, "pushed %s@%s\n", ref, digest)
	return ref + "@" + digest, nil
}

// manifestTypes are the manifests a push makes, for the Accept header.
var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
}

// do calls the registry's HTTP API: with basic auth when a user is
// configured, and once more with a token when the registry answers 401
// with a Bearer challenge (registry_token.go).
func (r *Registry) do(ctx context.Context, method, path string, accept []string) (*http.Response, error) {
	resp, err := r.send(ctx, method, path, accept, "")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	c, ok := parseBearer(resp.Header.Get("WWW-Authenticate"))
	if !ok {
		return resp, nil
	}
	resp.Body.Close()
	token, err := r.token(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return r.send(ctx, method, path, accept, token)
}

func (r *Registry) send(ctx context.Context, method, path string, accept []string, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base()+path, nil)
	if err != nil {
		return nil, err
	}
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ", "))
	}
	switch {
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	case r.User != "":
		req.SetBasicAuth(r.User, r.Password)
	}
	return r.client().Do(req)
}

func (r *Registry) getJSON(ctx context.Context, path string, accept []string, v any) (http.Header, error) {
	resp, err := r.do(ctx, http.MethodGet, path, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return resp.Header, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.Header, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp.Header, json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v)
}

var errNotFound = errors.New("not found")

// Repositories lists the registry's repositories named <project>-…
// (the catalog, every page).
func (r *Registry) repositories(ctx context.Context, project string) ([]string, error) {
	var out []string
	path := "/v2/_catalog?n=1000"
	for path != "" {
		var page struct{ Repositories []string }
		h, err := r.getJSON(ctx, path, nil, &page)
		if err != nil {
			return nil, fmt.Errorf("list the registry's repositories: %w", err)
		}
		for _, name := range page.Repositories {
			if strings.HasPrefix(name, project+"-") {
				out = append(out, name)
			}
		}
		path = nextPage(h.Get("Link"))
	}
	return out, nil
}

// nextPage reads the path of a Link: <…>; rel="next" header.
func nextPage(link string) string {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
		return ""
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return ""
	}
	return u.RequestURI()
}

// DeleteProject deletes every tag of project's images: each manifest of
// a repository named <project>-… whose image carries the project's label
// (another project's repository may share the prefix) is deleted by digest.
// The blobs stay until the registry's garbage collection runs.
func (r *Registry) DeleteProject(ctx context.Context, project string) error {
	repos, err := r.repositories(ctx, project)
	if err != nil {
		return err
	}
	var errs []error
	for _, repo := range repos {
		var tags struct{ Tags []string }
		if _, err := r.getJSON(ctx, "/v2/"+repo+"/tags/list", nil, &tags); err != nil {
			if !errors.Is(err, errNotFound) {
				errs = append(errs, fmt.Errorf("list tags of %s: %w", repo, err))
			}
			continue
		}
		digests := map[string]bool{}
		for _, tag := range tags.Tags {
			digest, owned, err := r.ownedManifest(ctx, repo, tag, project)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if owned {
				digests[digest] = true
			}
		}
		for _, d := range slices.Sorted(maps.Keys(digests)) {
			if err := r.deleteManifest(ctx, repo, d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// deleteManifest deletes repo@digest (every tag naming it goes with it).
func (r *Registry) deleteManifest(ctx context.Context, repo, digest string) error {
	resp, err := r.do(ctx, http.MethodDelete, "/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		return fmt.Errorf("delete %s@%s: %w", repo, digest, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("delete %s@%s: %s (does the registry allow deletes?)", repo, digest, resp.Status)
	}
	return nil
}

// ownedManifest returns the digest of repo:tag and whether its image
// carries project's label.
func (r *Registry) ownedManifest(ctx context.Context, repo, tag, project string) (string, bool, error) {
	var m struct {
		Config struct{ Digest string }
	}
	h, err := r.getJSON(ctx, "/v2/"+repo+"/manifests/"+tag, manifestTypes, &m)
	if errors.Is(err, errNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read manifest %s:%s: %w", repo, tag, err)
	}
	digest := h.Get("Docker-Content-Digest")
	if digest == "" || m.Config.Digest == "" {
		return "", false, fmt.Errorf("manifest %s:%s: no digest", repo, tag)
	}
	var cfg struct {
		Config struct{ Labels map[string]string }
	}
	if _, err := r.getJSON(ctx, "/v2/"+repo+"/blobs/"+m.Config.Digest, nil, &cfg); err != nil {
		return "", false, fmt.Errorf("read image config of %s:%s: %w", repo, tag, err)
	}
	return digest, cfg.Config.Labels[contract.LabelProject] == project, nil
}

// Check answers whether the registry's API answers (GET /v2/).
func (r *Registry) Check(ctx context.Context) error {
	resp, err := r.do(ctx, http.MethodGet, "/v2/", nil)
	if err != nil {
		return fmt.Errorf("registry %s: %w", r.Address, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry %s: GET /v2/: %s", r.Address, resp.Status)
	}
	return nil
}

// createOptions and updateOptions hand the registry's credentials to the
// swarm with a service whose image is on Slipway's registry (docker service
// create --with-registry-auth), so that every node can pull the pushed
// images from a registry that needs them. A service of any other image
// gets none: the daemon offers the credentials it is given to whatever
// registry the image names, and a pull request names image-only services'
// images itself.
func (e *Engine) createOptions(spec swarm.ServiceSpec) swarm.ServiceCreateOptions {
	return swarm.ServiceCreateOptions{EncodedRegistryAuth: e.authFor(spec)}
}

func (e *Engine) updateOptions(spec swarm.ServiceSpec) swarm.ServiceUpdateOptions {
	return swarm.ServiceUpdateOptions{EncodedRegistryAuth: e.authFor(spec)}
}

// authFor is the registry's credentials for a service that runs an image
// Slipway built and pushed (the built label is Slipway's alone), and ""
// for any other: an image-only service's image is the pull request's
// choice, and may name any repository of the registry.
func (e *Engine) authFor(spec swarm.ServiceSpec) string {
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil || spec.Labels[contract.LabelBuilt] != "true" || !e.opts.Registry.Holds(cs.Image) {
		return ""
	}
	return e.opts.Registry.auth()
}

// Holds reports whether image names a repository on this registry (its
// domain is the registry's address exactly).
func (r *Registry) Holds(image string) bool {
	if r == nil || r.Address == "" {
		return false
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	return strings.EqualFold(reference.Domain(named), r.Address)
}
