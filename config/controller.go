// Package config reads Slipway's two configuration files: the controller's
// own slipway.yaml (overridden by SLIPWAY_* environment variables, with any
// secret also readable from a file named by the *_FILE variant) and a
// repository's .slipway.yml (or the x-slipway key of its compose file).
//
// The doc comments on the struct fields are the user documentation of each
// key; docs/configuration.md is generated from the same text.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Controller is slipway.yaml.
type Controller struct {
	// Domain under which previews are served: pr-<N>.<domain>.
	Domain string `yaml:"domain"`
	// Listen addresses of the HTTP and HTTPS servers.
	Listen Listen `yaml:"listen"`
	// TLS settings for preview hosts and the control surface.
	TLS TLS `yaml:"tls"`
	// GitHub connection. Without it, serve runs in local mode: the proxy and
	// dashboard serve environments made by `slipway up`.
	GitHub *GitHub `yaml:"github"`
	// Repos that Slipway builds previews for. Deliveries for any other repo are refused.
	Repos []RepoPolicy `yaml:"repos"`
	// Limits for builds, environments and each container.
	Limits Limits `yaml:"limits"`
	// StateDir holds the history database, certificates and extracted sources.
	StateDir string `yaml:"state_dir"`
	// Resync is how often every open PR and every environment is reconciled,
	// whatever webhooks arrived.
	Resync Duration `yaml:"resync"`
	// HostTemplate overrides the primary host template (Go text/template with
	// .Number, .Repo, .Owner, .Service, .Domain). Left out with several
	// repositories configured, the template names the repository:
	// "pr-{{.Number}}-{{.Repo}}.{{.Domain}}" ("pr-{{.Number}}-{{.Repo}}-{{.Owner}}.{{.Domain}}"
	// when two of them share a name). Templates that give two configured
	// repositories the same host are refused.
	HostTemplate string `yaml:"host_template"`
	// ServiceHostTemplate overrides the template for other exposed services.
	// Left out with several repositories configured, the template names the
	// repository: "{{.Service}}-pr-{{.Number}}-{{.Repo}}.{{.Domain}}" (with
	// "-{{.Owner}}" after the repository when two share a name).
	ServiceHostTemplate string `yaml:"service_host_template"`
	// Secrets are controller-side values injected by name into trusted PRs'
	// environments when their .slipway.yml lists them: each becomes an
	// environment variable of the same name in every service. Each value may be given
	// inline, from the environment variable SLIPWAY_SECRET_<NAME>, or from a
	// file through SLIPWAY_SECRET_<NAME>_FILE.
	Secrets map[string]Secret `yaml:"secrets"`
	// Policy relaxes security rules for all repositories (see docs/security.md).
	Policy Policy `yaml:"policy"`
	// Dashboard access.
	Dashboard Dashboard `yaml:"dashboard"`
	// Access decides who may open previews, for every repository that does
	// not set its own repos[].access: "public" (anyone who knows the host),
	// "github" (people signed in with GitHub who have at least read access
	// to the pull request's repository; needs github.oauth) or "password"
	// (a shared password, access_password_file). See docs/access.md.
	Access string `yaml:"access"`
	// AccessPassword is the shared password of access: password (prefer
	// access_password_file).
	AccessPassword string `yaml:"access_password"`
	// AccessPasswordFile is a file holding AccessPassword.
	AccessPasswordFile string `yaml:"access_password_file"`
	// AccessTeam narrows access: github to members of an organisation
	// ("acme") or of one of its teams ("acme/qa"), on top of read access to
	// the repository. Slipway's GitHub App (or token) must be able to read
	// the organisation's members.
	AccessTeam string `yaml:"access_team"`
	// NoIndex adds "X-Robots-Tag: noindex" to every preview response, so
	// search engines leave previews out.
	NoIndex bool `yaml:"noindex"`
	// Hostname is "" (hosts from the host templates) or "random": each
	// pull request's hosts get a stable, unguessable suffix derived with a
	// key kept under state_dir (pr-7-k3x9q2mf.<domain>), so a preview's
	// address cannot be guessed from its number.
	Hostname string `yaml:"hostname"`
	// TrustedProxies are CIDRs of proxies in front of Slipway whose
	// X-Forwarded-* headers are kept.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Firewall keeps preview networks from reaching the host's services and
	// the cloud metadata address with iptables rules: "auto" (when Slipway
	// runs as root on the host; a warning otherwise), "iptables" (required:
	// refuse to start without it) or "off". See docs/security.md
	// for the rules to add by hand when Slipway runs in a container.
	Firewall string `yaml:"firewall"`
	// BuildNetwork is where the RUN steps of a pull request's build run
	// (unless its compose file sets build.network: none): "auto" (on a
	// bridge network of the preview's own, firewalled like its other networks;
	// without a network when the firewall is off), "bridge" (on that
	// network even when the firewall is off: the operator's own rules for
	// br-+ interfaces, see docs/security.md, must then keep builds from the
	// host and the metadata address) or "none" (never a network: builds
	// that download dependencies fail). Builds never run on the engine's
	// default bridge.
	BuildNetwork string `yaml:"build_network"`
	// LogFormat is text or json; default text on a terminal, json otherwise.
	// The --log-format flag wins.
	LogFormat string `yaml:"log_format"`
	// ReadyTimeout bounds how long a deploy waits for services to become
	// running and healthy.
	ReadyTimeout Duration `yaml:"ready_timeout"`
	// WakeTimeout is how long a request for a sleeping preview (see
	// sleep_after) waits while the preview wakes: it gets the preview's
	// real answer as soon as the preview is served again, and the failure
	// page at once if waking fails. Only a request that outlasts it gets
	// the "waking up" page, which reloads itself. 0 answers every such
	// request with that page at once.
	WakeTimeout Duration `yaml:"wake_timeout"`
	// BuildTimeout bounds one deploy of an environment (fetching the source,
	// building the images, starting and waiting for the services).
	BuildTimeout Duration `yaml:"build_timeout"`
	// Loader bounds the confined process that loads a pull request's compose
	// files (see docs/security.md).
	Loader Loader `yaml:"loader"`
	// Engine runs the previews: "docker" (every preview on the one Docker
	// host) or "swarm" (services of a Docker Swarm whose manager Slipway
	// talks to, with images pushed to registry; see docs/swarm.md).
	Engine string `yaml:"engine"`
	// Registry receives the images built for previews; required with engine: swarm.
	Registry Registry `yaml:"registry"`
}

// Loader bounds the child process that loads untrusted compose files.
type Loader struct {
	// Confinement is "required" (refuse to load a pull request's compose
	// files where the kernel can confine the loader neither with Landlock nor
	// in a mount namespace) or "auto" (then load unconfined, with a warning,
	// and only the pre-load path checks in the way).
	Confinement string `yaml:"confinement"`
	// Timeout bounds one load.
	Timeout Duration `yaml:"timeout"`
	// Memory bounds the loader's memory, e.g. 512m.
	Memory ByteSize `yaml:"memory"`
}

// Listen holds listen addresses.
type Listen struct {
	// HTTP address.
	HTTP string `yaml:"http"`
	// HTTPS address, used only when tls.mode is not off.
	HTTPS string `yaml:"https"`
}

// TLS modes.
const (
	TLSOff      = "off"
	TLSOnDemand = "on-demand"
	TLSWildcard = "wildcard"
)

// TLS configures certificates for preview hosts.
type TLS struct {
	// Mode is off (plain HTTP), on-demand (a certificate per preview host,
	// only for hosts with an environment) or wildcard (one *.domain
	// certificate through DNS-01).
	Mode string `yaml:"mode"`
	// Email for the ACME account.
	Email string `yaml:"email"`
	// CA is the ACME directory URL. Default Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of roots trusted for the ACME server (private CAs, tests).
	CARoot string `yaml:"ca_root"`
	// DNSProvider names the libdns provider for wildcard mode: "cloudflare".
	DNSProvider string `yaml:"dns_provider"`
	// DNSAPIToken is the provider's API token (or dns_api_token_file / SLIPWAY_TLS_DNS_API_TOKEN_FILE).
	DNSAPIToken string `yaml:"dns_api_token"`
	// DNSAPITokenFile is a file holding DNSAPIToken.
	DNSAPITokenFile string `yaml:"dns_api_token_file"`
}

// GitHub configures the connection to GitHub or GitHub Enterprise.
type GitHub struct {
	// APIURL is the REST API base.
	APIURL string `yaml:"api_url"`
	// Token is a personal access token (prefer token_file).
	Token string `yaml:"token"`
	// TokenFile is a file holding the token.
	TokenFile string `yaml:"token_file"`
	// AppID of a GitHub App; with PrivateKeyFile it replaces the token.
	AppID int64 `yaml:"app_id"`
	// PrivateKeyFile is the App's PEM private key.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PrivateKey is the App's PEM private key inline (prefer the file).
	PrivateKey string `yaml:"private_key"`
	// WebhookSecret verifies deliveries. Several may be given, separated by
	// commas or newlines, while a secret is rotated.
	WebhookSecret string `yaml:"webhook_secret"`
	// WebhookSecretFile is a file holding the webhook secret(s).
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// DashboardURL is the public base URL of the dashboard, used for
	// deployment log links. Default: the URL of domain itself, https://<domain>
	// with TLS and http://<domain> without (with the listen port when it is
	// not the scheme's standard one).
	DashboardURL string `yaml:"dashboard_url"`
	// OAuth is the OAuth client (of a GitHub App or an OAuth App) people
	// sign in with to open previews whose access is github.
	OAuth OAuth `yaml:"oauth"`
}

// OAuth is the client of GitHub's OAuth web flow. Its callback URL, set in
// the App's settings, is https://<domain>/auth/callback.
type OAuth struct {
	// ClientID of the GitHub App or OAuth App.
	ClientID string `yaml:"client_id"`
	// ClientSecret of the App (prefer client_secret_file).
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile is a file holding ClientSecret.
	ClientSecretFile string `yaml:"client_secret_file"`
	// WebURL is where people sign in: https://github.com/, or the GitHub
	// Enterprise server's own address.
	WebURL string `yaml:"web_url"`
}

// Firewall settings.
const (
	FirewallAuto     = "auto"
	FirewallIPTables = "iptables"
	FirewallOff      = "off"
)

// Build network settings.
const (
	BuildNetworkAuto   = "auto"
	BuildNetworkBridge = "bridge"
	BuildNetworkNone   = "none"
)

// Fork trust settings.
const (
	ForksNever   = "never"
	ForksApprove = "approve"
	ForksAlways  = "always"
)

// RepoPolicy is one configured repository.
type RepoPolicy struct {
	// Name is owner/repo.
	Name string `yaml:"name"`
	// Forks decides whether PRs from forks build: never, approve (after a
	// writer approves the head SHA) or always.
	Forks string `yaml:"forks"`
	// Trigger is "all" or "label:<name>" (only PRs carrying the label).
	Trigger string `yaml:"trigger"`
	// Drafts deploys draft pull requests too; otherwise a draft gets its
	// environment when it is marked ready for review.
	Drafts bool `yaml:"drafts"`
	// TTL overrides the ttl of the repository's .slipway.yml; 0 disables
	// expiry.
	TTL *Duration `yaml:"ttl"`
	// Policy relaxes security rules for this repository only.
	Policy Policy `yaml:"policy"`
	// Limits lowers (never raises) the global container limits for this repo.
	Limits *Limits `yaml:"limits"`
	// Access overrides the global access for this repository's previews:
	// public, github or password.
	Access string `yaml:"access"`
	// AccessPassword is this repository's shared password for access:
	// password (prefer access_password_file); default the global one.
	AccessPassword string `yaml:"access_password"`
	// AccessPasswordFile is a file holding AccessPassword.
	AccessPasswordFile string `yaml:"access_password_file"`
	// AccessTeam overrides the global access_team for this repository.
	AccessTeam string `yaml:"access_team"`
}

// TriggerLabel returns the label a PR needs, or "" when every PR deploys.
func (r RepoPolicy) TriggerLabel() string {
	if l, ok := strings.CutPrefix(r.Trigger, "label:"); ok {
		return strings.TrimSpace(l)
	}
	return ""
}

// Limits bound builds, environments and containers.
type Limits struct {
	// Environments is the most environments at once; more wait in order.
	Environments int `yaml:"environments"`
	// Builds is the most builds at once.
	Builds int `yaml:"builds"`
	// Memory per container, e.g. 1g.
	Memory ByteSize `yaml:"memory"`
	// CPUs per container.
	CPUs float64 `yaml:"cpus"`
	// PIDs per container.
	PIDs int64 `yaml:"pids"`
	// LogSize caps each container's json-file log.
	LogSize ByteSize `yaml:"log_size"`
}

// Policy relaxes compose security rules. The PR's own files can never do this.
type Policy struct {
	// Allow lists rule IDs (docs/security.md) that are not enforced.
	Allow []string `yaml:"allow"`
	// CapAdd lists capabilities a compose file may add.
	CapAdd []string `yaml:"cap_add"`
	// Sysctls lists sysctl names a compose file may set.
	Sysctls []string `yaml:"sysctls"`
	// ExternalNetworks lists external networks a compose file may join.
	ExternalNetworks []string `yaml:"external_networks"`
	// ExternalVolumes lists external volumes a compose file may mount.
	ExternalVolumes []string `yaml:"external_volumes"`
	// AllowedRegistries lists image registries on internal addresses
	// (loopback, private, link-local, single-label or .internal names) that
	// images and Dockerfiles may pull from, as host:port, or host for
	// every port: ["registry.internal:5000", "10.0.0.5"].
	AllowedRegistries []string `yaml:"allowed_registries"`
	// ReservedNames lists single-label names no service, alias or
	// container_name may take, added to the built-in ones (localhost,
	// slipway, docker, metadata, …) and the hosts the controller dials: the
	// names of hosts Slipway's own container resolves on preview networks.
	ReservedNames []string `yaml:"reserved_names"`
	// ProjectCaps bound the size of one preview project. In repos[].policy,
	// each key set replaces the global one (higher or lower).
	ProjectCaps ProjectCaps `yaml:"project_caps"`
}

// ProjectCaps bound one preview project as a whole (rule SW-RES-007). A key
// left out (or 0) takes its default.
type ProjectCaps struct {
	// Services is the most services of one project.
	Services int `yaml:"services"`
	// Containers is the most containers of one project: every service's
	// scale (or deploy.replicas), plus jobs.
	Containers int `yaml:"containers"`
	// Networks is the most networks of one project.
	Networks int `yaml:"networks"`
	// Volumes is the most volumes of one project.
	Volumes int `yaml:"volumes"`
	// Memory is the most memory of all containers together, each counted at
	// its limit (capped by limits.memory).
	Memory ByteSize `yaml:"memory"`
	// CPUs is the most CPUs of all containers together, each counted at its
	// limit (capped by limits.cpus).
	CPUs float64 `yaml:"cpus"`
	// PIDs is the most processes of all containers together, each counted
	// at its limit (capped by limits.pids).
	PIDs int64 `yaml:"pids"`
}

// DefaultProjectCaps returns the caps that apply to a key left out.
func DefaultProjectCaps() ProjectCaps {
	return ProjectCaps{Services: 50, Containers: 100, Networks: 20, Volumes: 20, Memory: 100 << 30, CPUs: 100, PIDs: 51200}
}

// Or returns p with every zero key taken from d.
func (p ProjectCaps) Or(d ProjectCaps) ProjectCaps {
	return ProjectCaps{
		Services:   cmp.Or(p.Services, d.Services),
		Containers: cmp.Or(p.Containers, d.Containers),
		Networks:   cmp.Or(p.Networks, d.Networks),
		Volumes:    cmp.Or(p.Volumes, d.Volumes),
		Memory:     cmp.Or(p.Memory, d.Memory),
		CPUs:       cmp.Or(p.CPUs, d.CPUs),
		PIDs:       cmp.Or(p.PIDs, d.PIDs),
	}
}

// Merge returns p with the allowances of o added, and o's project caps
// replacing p's where o sets them.
func (p Policy) Merge(o Policy) Policy {
	return Policy{
		Allow:             append(append([]string(nil), p.Allow...), o.Allow...),
		CapAdd:            append(append([]string(nil), p.CapAdd...), o.CapAdd...),
		Sysctls:           append(append([]string(nil), p.Sysctls...), o.Sysctls...),
		ExternalNetworks:  append(append([]string(nil), p.ExternalNetworks...), o.ExternalNetworks...),
		ExternalVolumes:   append(append([]string(nil), p.ExternalVolumes...), o.ExternalVolumes...),
		AllowedRegistries: append(append([]string(nil), p.AllowedRegistries...), o.AllowedRegistries...),
		ReservedNames:     append(append([]string(nil), p.ReservedNames...), o.ReservedNames...),
		ProjectCaps:       o.ProjectCaps.Or(p.ProjectCaps),
	}
}

// PolicyFor returns the policy for a repository: the global one with the
// repository's merged in (repo may be the zero RepoPolicy of an
// unconfigured repository), and the names this configuration makes the
// controller dial reserved.
func (c *Controller) PolicyFor(repo RepoPolicy) Policy {
	p := c.Policy.Merge(repo.Policy)
	p.ReservedNames = append(p.ReservedNames, c.ImpliedReservedNames()...)
	return p
}

// ImpliedReservedNames returns the single-label host names this
// configuration makes the controller dial (github.api_url, tls.ca, the
// swarm registry's address and API): names a preview's services must not
// take, for Slipway's own container may resolve them through a preview
// network's DNS (and send the registry its password).
func (c *Controller) ImpliedReservedNames() []string {
	var urls []string
	if c.GitHub != nil {
		urls = append(urls, c.GitHub.APIURL)
	}
	urls = append(urls, c.TLS.CA)
	if c.Engine == EngineSwarm {
		urls = append(urls, "https://"+c.Registry.Address, c.Registry.API)
	}
	var out []string
	for _, raw := range urls {
		if h := singleLabelHost(raw); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// singleLabelHost returns the host of a URL when it is one DNS label (no
// dot, not an IP literal), lower-cased; "" otherwise.
func singleLabelHost(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	h := strings.ToLower(u.Hostname())
	if h == "" || strings.ContainsAny(h, ".:") {
		return ""
	}
	return h
}

// Secret is one controller-side secret value.
type Secret struct {
	// Value inline (prefer file).
	Value string `yaml:"value"`
	// File holding the value.
	File string `yaml:"file"`
}

// Dashboard configures access to the dashboard and API.
type Dashboard struct {
	// Token is a bearer token for the API and actions (or token_file).
	Token string `yaml:"token"`
	// TokenFile is a file holding Token.
	TokenFile string `yaml:"token_file"`
	// User and Password enable a login form alternative to the token.
	User string `yaml:"user"`
	// Password for User (or password_file).
	Password string `yaml:"password"`
	// PasswordFile is a file holding Password.
	PasswordFile string `yaml:"password_file"`
	// Public makes read-only pages and API answers visible without credentials.
	Public bool `yaml:"public"`
	// PublicLogs also makes service and build logs public when Public is set.
	// Logs hold whatever the services print; keep it off unless every log is
	// fit for anyone.
	PublicLogs bool `yaml:"public_logs"`
}

// Defaults returns the controller configuration used when a key is absent
// (Validate completes it). docs/configuration.md's Default column is what
// the loader makes of a configuration that leaves a key out, so state a
// default here or in Validate, not in a doc comment.
func Defaults() Controller {
	return Controller{
		Domain:   "localhost",
		Listen:   Listen{HTTPS: ":443"},
		TLS:      TLS{Mode: TLSOff},
		StateDir: "/var/lib/slipway",
		Resync:   Duration(5 * time.Minute),
		Limits: Limits{
			Environments: 20, Builds: 2, Memory: 1 << 30, CPUs: 1.0, PIDs: 512, LogSize: 10 << 20,
		},
		ReadyTimeout: Duration(3 * time.Minute),
		WakeTimeout:  Duration(30 * time.Second),
		BuildTimeout: Duration(20 * time.Minute),
		Loader:       Loader{Confinement: LoaderRequired, Timeout: Duration(20 * time.Second), Memory: 1 << 30},
		Policy:       Policy{ProjectCaps: DefaultProjectCaps()},
		Access:       AccessPublic,
		NoIndex:      true,
	}
}

// Loader confinement modes.
const (
	LoaderAuto     = "auto"
	LoaderRequired = "required"
)

// LoadController reads path (may be "" for defaults only), applies SLIPWAY_*
// overrides from env (nil means the process environment), resolves *_file
// secrets and validates the result.
func LoadController(path string, env func(string) (string, bool)) (*Controller, error) {
	var b []byte
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	return loadController(displayPath(path), b, env)
}

// ParseController is LoadController for a slipway.yaml already read (b may
// be empty: defaults and environment only).
func ParseController(b []byte, env func(string) (string, bool)) (*Controller, error) {
	return loadController("(given)", b, env)
}

// loadController decodes b (named name in errors) over the defaults and
// completes it as LoadController describes.
func loadController(name string, b []byte, env func(string) (string, bool)) (*Controller, error) {
	if env == nil {
		env = os.LookupEnv
	}
	c := Defaults()
	if err := decodeStrict(b, &c); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", name, err)
	}
	if err := applyEnv(&c, env); err != nil {
		return nil, err
	}
	if err := c.resolveFiles(env); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

func displayPath(p string) string {
	if p == "" {
		return "(defaults and environment)"
	}
	return p
}

// envKeys maps SLIPWAY_* variables to setters.
var envKeys = map[string]func(c *Controller, v string) error{
	"SLIPWAY_DOMAIN":      func(c *Controller, v string) error { c.Domain = v; return nil },
	"SLIPWAY_LISTEN_HTTP": func(c *Controller, v string) error { c.Listen.HTTP = v; return nil },
	"SLIPWAY_LISTEN_HTTPS": func(c *Controller, v string) error {
		c.Listen.HTTPS = v
		return nil
	},
	"SLIPWAY_STATE_DIR":   func(c *Controller, v string) error { c.StateDir = v; return nil },
	"SLIPWAY_TLS_MODE":    func(c *Controller, v string) error { c.TLS.Mode = v; return nil },
	"SLIPWAY_TLS_EMAIL":   func(c *Controller, v string) error { c.TLS.Email = v; return nil },
	"SLIPWAY_TLS_CA":      func(c *Controller, v string) error { c.TLS.CA = v; return nil },
	"SLIPWAY_TLS_CA_ROOT": func(c *Controller, v string) error { c.TLS.CARoot = v; return nil },
	"SLIPWAY_TLS_DNS_PROVIDER": func(c *Controller, v string) error {
		c.TLS.DNSProvider = v
		return nil
	},
	"SLIPWAY_TLS_DNS_API_TOKEN": func(c *Controller, v string) error { c.TLS.DNSAPIToken = v; return nil },
	"SLIPWAY_TLS_DNS_API_TOKEN_FILE": func(c *Controller, v string) error {
		c.TLS.DNSAPITokenFile = v
		return nil
	},
	"SLIPWAY_REGISTRY_PASSWORD_FILE": func(c *Controller, v string) error {
		c.Registry.PasswordFile = v
		return nil
	},
	"SLIPWAY_GITHUB_API_URL":     func(c *Controller, v string) error { c.github().APIURL = v; return nil },
	"SLIPWAY_GITHUB_TOKEN":       func(c *Controller, v string) error { c.github().Token = v; return nil },
	"SLIPWAY_GITHUB_TOKEN_FILE":  func(c *Controller, v string) error { c.github().TokenFile = v; return nil },
	"SLIPWAY_GITHUB_PRIVATE_KEY": func(c *Controller, v string) error { c.github().PrivateKey = v; return nil },
	"SLIPWAY_GITHUB_DASHBOARD_URL": func(c *Controller, v string) error {
		c.github().DashboardURL = v
		return nil
	},
	"SLIPWAY_GITHUB_PRIVATE_KEY_FILE": func(c *Controller, v string) error {
		c.github().PrivateKeyFile = v
		return nil
	},
	"SLIPWAY_GITHUB_APP_ID": func(c *Controller, v string) error {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SLIPWAY_GITHUB_APP_ID: %w", err)
		}
		c.github().AppID = id
		return nil
	},
	"SLIPWAY_GITHUB_WEBHOOK_SECRET": func(c *Controller, v string) error {
		c.github().WebhookSecret = v
		return nil
	},
	"SLIPWAY_GITHUB_WEBHOOK_SECRET_FILE": func(c *Controller, v string) error {
		c.github().WebhookSecretFile = v
		return nil
	},
	"SLIPWAY_DASHBOARD_TOKEN":      func(c *Controller, v string) error { c.Dashboard.Token = v; return nil },
	"SLIPWAY_DASHBOARD_TOKEN_FILE": func(c *Controller, v string) error { c.Dashboard.TokenFile = v; return nil },
	"SLIPWAY_DASHBOARD_USER":       func(c *Controller, v string) error { c.Dashboard.User = v; return nil },
	"SLIPWAY_DASHBOARD_PASSWORD":   func(c *Controller, v string) error { c.Dashboard.Password = v; return nil },
	"SLIPWAY_DASHBOARD_PASSWORD_FILE": func(c *Controller, v string) error {
		c.Dashboard.PasswordFile = v
		return nil
	},
	"SLIPWAY_ACCESS":          func(c *Controller, v string) error { c.Access = v; return nil },
	"SLIPWAY_ACCESS_TEAM":     func(c *Controller, v string) error { c.AccessTeam = v; return nil },
	"SLIPWAY_ACCESS_PASSWORD": func(c *Controller, v string) error { c.AccessPassword = v; return nil },
	"SLIPWAY_ACCESS_PASSWORD_FILE": func(c *Controller, v string) error {
		c.AccessPasswordFile = v
		return nil
	},
	"SLIPWAY_NOINDEX": func(c *Controller, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_NOINDEX: %w", err)
		}
		c.NoIndex = b
		return nil
	},
	"SLIPWAY_HOSTNAME":               func(c *Controller, v string) error { c.Hostname = v; return nil },
	"SLIPWAY_GITHUB_OAUTH_CLIENT_ID": func(c *Controller, v string) error { c.github().OAuth.ClientID = v; return nil },
	"SLIPWAY_GITHUB_OAUTH_CLIENT_SECRET": func(c *Controller, v string) error {
		c.github().OAuth.ClientSecret = v
		return nil
	},
	"SLIPWAY_GITHUB_OAUTH_CLIENT_SECRET_FILE": func(c *Controller, v string) error {
		c.github().OAuth.ClientSecretFile = v
		return nil
	},
	"SLIPWAY_GITHUB_OAUTH_WEB_URL": func(c *Controller, v string) error { c.github().OAuth.WebURL = v; return nil },
	"SLIPWAY_LOG_FORMAT":           func(c *Controller, v string) error { c.LogFormat = v; return nil },
	"SLIPWAY_FIREWALL":             func(c *Controller, v string) error { c.Firewall = v; return nil },
	"SLIPWAY_BUILD_NETWORK": func(c *Controller, v string) error {
		c.BuildNetwork = v
		return nil
	},
	"SLIPWAY_RESYNC": func(c *Controller, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_RESYNC: %w", err)
		}
		c.Resync = Duration(d)
		return nil
	},
	"SLIPWAY_WAKE_TIMEOUT": func(c *Controller, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SLIPWAY_WAKE_TIMEOUT: %w", err)
		}
		c.WakeTimeout = Duration(d)
		return nil
	},
	"SLIPWAY_LIMITS_ENVIRONMENTS": func(c *Controller, v string) error {
		return parseIntInto(&c.Limits.Environments, "SLIPWAY_LIMITS_ENVIRONMENTS", v)
	},
	"SLIPWAY_LIMITS_BUILDS": func(c *Controller, v string) error {
		return parseIntInto(&c.Limits.Builds, "SLIPWAY_LIMITS_BUILDS", v)
	},
}

func parseIntInto(dst *int, key, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	*dst = n
	return nil
}

func (c *Controller) github() *GitHub {
	if c.GitHub == nil {
		c.GitHub = &GitHub{}
	}
	return c.GitHub
}

func applyEnv(c *Controller, env func(string) (string, bool)) error {
	for key, set := range envKeys {
		if v, ok := env(key); ok {
			if err := set(c, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveFiles reads every *_file secret into its value field. A file named
// but unreadable is an error: a missing secret must not silently disable auth.
func (c *Controller) resolveFiles(env func(string) (string, bool)) error {
	read := func(what, path string, dst *string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", what, path, err)
		}
		*dst = strings.TrimRight(string(b), "\r\n")
		return nil
	}
	if g := c.GitHub; g != nil {
		if err := read("github token", g.TokenFile, &g.Token); err != nil {
			return err
		}
		if err := read("github private key", g.PrivateKeyFile, &g.PrivateKey); err != nil {
			return err
		}
		if err := read("webhook secret", g.WebhookSecretFile, &g.WebhookSecret); err != nil {
			return err
		}
		if err := read("github.oauth client secret", g.OAuth.ClientSecretFile, &g.OAuth.ClientSecret); err != nil {
			return err
		}
	}
	if err := read("access password", c.AccessPasswordFile, &c.AccessPassword); err != nil {
		return err
	}
	for i := range c.Repos {
		r := &c.Repos[i]
		if err := read(fmt.Sprintf("repos[%d].access_password", i), r.AccessPasswordFile, &r.AccessPassword); err != nil {
			return err
		}
	}
	if err := read("dns api token", c.TLS.DNSAPITokenFile, &c.TLS.DNSAPIToken); err != nil {
		return err
	}
	if err := read("dashboard token", c.Dashboard.TokenFile, &c.Dashboard.Token); err != nil {
		return err
	}
	if err := read("dashboard password", c.Dashboard.PasswordFile, &c.Dashboard.Password); err != nil {
		return err
	}
	if err := read("registry password", c.Registry.PasswordFile, &c.Registry.Password); err != nil {
		return err
	}
	for name, s := range c.Secrets {
		envName := "SLIPWAY_SECRET_" + contract.EnvName(name)
		if v, ok := env(envName); ok {
			s.Value = v
		}
		if f, ok := env(envName + "_FILE"); ok {
			s.File = f
		}
		if err := read("secret "+name, s.File, &s.Value); err != nil {
			return err
		}
		c.Secrets[name] = s
	}
	return nil
}

// WebhookSecrets returns every configured webhook secret (several while one is rotated).
func (g *GitHub) WebhookSecrets() []string {
	var out []string
	for _, s := range strings.FieldsFunc(g.WebhookSecret, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports the first inconsistency.
func (c *Controller) Validate() error {
	var errs []error
	if c.Domain == "" {
		errs = append(errs, errors.New("domain is empty"))
	}
	switch c.TLS.Mode {
	case "", TLSOff, TLSOnDemand:
	case TLSWildcard:
		if c.TLS.DNSProvider == "" {
			errs = append(errs, errors.New("tls.mode wildcard needs tls.dns_provider"))
		}
	default:
		errs = append(errs, fmt.Errorf("tls.mode %q: want off, on-demand or wildcard", c.TLS.Mode))
	}
	if c.TLS.Mode == "" {
		c.TLS.Mode = TLSOff
	}
	switch c.Loader.Confinement {
	case "":
		c.Loader.Confinement = LoaderRequired
	case LoaderAuto, LoaderRequired:
	default:
		errs = append(errs, fmt.Errorf("loader.confinement %q: want auto or required", c.Loader.Confinement))
	}
	if c.Loader.Memory != 0 && c.Loader.Memory < 64<<20 {
		errs = append(errs, fmt.Errorf("loader.memory %d: want at least 64m", c.Loader.Memory))
	}
	switch c.Firewall {
	case "":
		c.Firewall = FirewallAuto
	case FirewallAuto, FirewallIPTables, FirewallOff:
	default:
		errs = append(errs, fmt.Errorf("firewall %q: want auto, iptables or off", c.Firewall))
	}
	switch c.BuildNetwork {
	case "":
		c.BuildNetwork = BuildNetworkAuto
	case BuildNetworkAuto, BuildNetworkBridge, BuildNetworkNone:
	default:
		errs = append(errs, fmt.Errorf("build_network %q: want auto, bridge or none", c.BuildNetwork))
	}
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = ":80"
		if c.GitHub == nil {
			c.Listen.HTTP = ":8080"
		}
	}
	if (c.Dashboard.User == "") != (c.Dashboard.Password == "") {
		errs = append(errs, errors.New("dashboard: set both user and password (or password_file), or neither"))
	}
	errs = append(errs, c.validateEngine()...)
	if c.Limits.Builds < 1 {
		errs = append(errs, fmt.Errorf("limits.builds %d: want at least 1", c.Limits.Builds))
	}
	if c.Limits.Environments < 1 {
		errs = append(errs, fmt.Errorf("limits.environments %d: want at least 1", c.Limits.Environments))
	}
	if g := c.GitHub; g != nil {
		if g.APIURL == "" {
			g.APIURL = "https://api.github.com/"
		}
		if g.Token == "" && g.AppID == 0 {
			errs = append(errs, errors.New("github: set token (or token_file) or app_id with private_key_file"))
		}
		if g.AppID != 0 && g.PrivateKey == "" {
			errs = append(errs, errors.New("github.app_id needs private_key_file"))
		}
		if len(g.WebhookSecrets()) == 0 {
			errs = append(errs, errors.New("github: webhook_secret (or webhook_secret_file) is required"))
		}
	}
	seen := map[string]bool{}
	for i := range c.Repos {
		r := &c.Repos[i]
		owner, name, ok := strings.Cut(r.Name, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("repos[%d].name %q: want owner/repo", i, r.Name))
		}
		key := strings.ToLower(r.Name)
		if seen[key] {
			errs = append(errs, fmt.Errorf("repos[%d].name %q is listed twice", i, r.Name))
		}
		seen[key] = true
		switch r.Forks {
		case "":
			r.Forks = ForksApprove
		case ForksNever, ForksApprove, ForksAlways:
		default:
			errs = append(errs, fmt.Errorf("repos[%d].forks %q: want never, approve or always", i, r.Forks))
		}
		if r.Trigger == "" {
			r.Trigger = "all"
		}
		if r.Trigger != "all" && r.TriggerLabel() == "" {
			errs = append(errs, fmt.Errorf("repos[%d].trigger %q: want all or label:<name>", i, r.Trigger))
		}
	}
	errs = append(errs, c.validateAccess()...)
	if err := c.checkHostCollisions(); err != nil {
		errs = append(errs, err)
	}
	if err := c.checkProjectCollisions(); err != nil {
		errs = append(errs, err)
	}
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		abs, err := filepath.Abs(c.StateDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("state_dir: %w", err))
		}
		c.StateDir = abs
	}
	return errors.Join(errs...)
}

// Repo returns the policy of the configured repository fullName (case-insensitive).
func (c *Controller) Repo(fullName string) (RepoPolicy, bool) {
	for _, r := range c.Repos {
		if strings.EqualFold(r.Name, fullName) {
			return r, true
		}
	}
	return RepoPolicy{}, false
}
