package contract

import "testing"

func TestProjectName(t *testing.T) {
	tests := []struct {
		owner, repo string
		pr          int
		want        string
	}{
		{"acme", "webshop", 1, "acme-webshop-pr-1"},
		{"Acme", "Web.Shop", 42, "acme-web-shop-pr-42"},
		{"local", "my app", 7, "local-my-app-pr-7"},
		{"o", "under_score", 3, "o-under_score-pr-3"},
		{"ünï", "cödé", 1, "-n--c-d--pr-1"},
	}
	for _, tt := range tests {
		if got := ProjectName(tt.owner, tt.repo, tt.pr); got != tt.want {
			t.Errorf("ProjectName(%q, %q, %d) = %q, want %q", tt.owner, tt.repo, tt.pr, got, tt.want)
		}
	}
}

func TestNamesAsComposeDoes(t *testing.T) {
	if got := ContainerName("p", "web", 2); got != "p-web-2" {
		t.Errorf("ContainerName = %q", got)
	}
	if got := ResourceName("p", "default"); got != "p_default" {
		t.Errorf("ResourceName = %q", got)
	}
	if got := ImageName("acme-shop-pr-1", "web", "0123456789abcdef0123"); got != "acme-shop-pr-1-web:0123456789ab" {
		t.Errorf("ImageName = %q", got)
	}
	if got := EnvName("my-api.v2"); got != "MY_API_V2" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestHost(t *testing.T) {
	tests := []struct {
		name, tmpl string
		d          HostData
		want       string
		wantErr    bool
	}{
		{"primary", PrimaryHostTemplate, HostData{Number: 1, Domain: "localhost"}, "pr-1.localhost", false},
		{"service", ServiceHostTemplate, HostData{Number: 12, Service: "API_v2", Domain: "preview.example.com"}, "api-v2-pr-12.preview.example.com", false},
		{"multi repo", MultiRepoPrimaryHostTemplate, HostData{Number: 3, Repo: "Web.Shop", Domain: "p.example.com."}, "pr-3-web-shop.p.example.com", false},
		{"custom", "{{.Owner}}-{{.Number}}.{{.Domain}}", HostData{Number: 5, Owner: "Acme", Domain: "x.dev"}, "acme-5.x.dev", false},
		{"outside domain", "pr-{{.Number}}.evil.com", HostData{Number: 1, Domain: "x.dev"}, "", true},
		{"bad template", "{{.Nope", HostData{Domain: "x.dev"}, "", true},
		{"unknown field", "{{.Nope}}.x.dev", HostData{Domain: "x.dev"}, "", true},
		{"label too long", "{{.Service}}.{{.Domain}}", HostData{Service: "a234567890123456789012345678901234567890123456789012345678901234", Domain: "x.dev"}, "", true},
		{"empty label", "pr-{{.Number}}..{{.Domain}}", HostData{Number: 1, Domain: "x.dev"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Host(tt.tmpl, tt.d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Host = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"pr-1.localhost":        "pr-1.localhost",
		"PR-1.LocalHost:8080":   "pr-1.localhost",
		"pr-1.localhost.":       "pr-1.localhost",
		"pr-1.localhost.:443":   "pr-1.localhost",
		"[::1]:80":              "",
		"127.0.0.1":             "127.0.0.1",
		"":                      "",
		"bücher.example":        "",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"a_b.example":           "",
		"-bad.example":          "",
	}
	for in, want := range tests {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOwnsHost(t *testing.T) {
	single := DefaultHostTemplates("x.dev", false)
	multi := DefaultHostTemplates("x.dev", true)
	custom := HostTemplates{Domain: "x.dev", Primary: "{{.Owner}}-{{.Repo}}-{{.Number}}.{{.Domain}}", Service: "{{.Owner}}-{{.Repo}}-{{.Number}}-{{.Service}}.{{.Domain}}"}
	noService := HostTemplates{Domain: "x.dev", Primary: "pr-{{.Number}}.{{.Domain}}", Service: "pr-{{.Number}}-api.{{.Domain}}"}
	tests := []struct {
		name    string
		t       HostTemplates
		host    string
		repo    string
		pr      int
		service string
		ok      bool
	}{
		{"primary", single, "pr-9.x.dev", "acme/shop", 9, "web", true},
		{"service host of its own service", single, "api-pr-9.x.dev", "acme/shop", 9, "api", true},
		{"service host of another of its services", single, "docs-pr-9.x.dev", "acme/shop", 9, "web", true},
		{"service name with dashes", single, "my-api-pr-9.x.dev", "acme/shop", 9, "", true},
		{"another PR's primary", single, "pr-2.x.dev", "acme/shop", 1, "web", false},
		{"another PR's service host", single, "api-pr-2.x.dev", "acme/shop", 1, "api", false},
		{"number as prefix of another", single, "pr-90.x.dev", "acme/shop", 9, "web", false},
		{"number as suffix of another", single, "pr-19.x.dev", "acme/shop", 9, "web", false},
		{"glued prefix", single, "xpr-9.x.dev", "acme/shop", 9, "web", false},
		{"service name of two labels", single, "a.b-pr-9.x.dev", "acme/shop", 9, "web", false},
		{"empty service name", single, "-pr-9.x.dev", "acme/shop", 9, "web", false},
		{"the domain", single, "x.dev", "acme/shop", 9, "web", false},
		{"other name under the domain", single, "admin.x.dev", "acme/shop", 9, "web", false},
		{"outside the domain", single, "pr-9.evil.dev", "acme/shop", 9, "web", false},
		{"deeper under the domain", single, "a.pr-9.x.dev", "acme/shop", 9, "web", false},
		{"multi: own primary", multi, "pr-9-shop.x.dev", "acme/shop", 9, "web", true},
		{"multi: own service host", multi, "api-pr-9-shop.x.dev", "acme/shop", 9, "api", true},
		{"multi: repository name as substring (workshop)", multi, "pr-9-workshop.x.dev", "acme/shop", 9, "web", false},
		{"multi: repository name as substring, service", multi, "api-pr-9-workshop.x.dev", "acme/shop", 9, "api", false},
		{"multi: single-repo host", multi, "pr-9.x.dev", "acme/shop", 9, "web", false},
		{"multi: other repository's primary", multi, "pr-9-blog.x.dev", "acme/shop", 9, "web", false},
		{"multi: sanitized repository", multi, "pr-3-web-shop.x.dev", "Acme/Web.Shop", 3, "web", true},
		{"custom: owner counts", custom, "acme-shop-9.x.dev", "acme/shop", 9, "", true},
		{"custom: other owner", custom, "evil-shop-9.x.dev", "acme/shop", 9, "", false},
		{"custom: service", custom, "acme-shop-9-api.x.dev", "acme/shop", 9, "", true},
		{"no .Service in service template", noService, "pr-9-api.x.dev", "acme/shop", 9, "web", true},
		{"no .Service: nothing else", noService, "pr-9-web.x.dev", "acme/shop", 9, "web", false},
		{"zero value is localhost defaults", HostTemplates{}, "pr-1.localhost", "local/app", 1, "web", true},
		{"no owner", single, "pr-9.x.dev", "shop", 9, "web", false},
		{"no number", single, "pr-0.x.dev", "acme/shop", 0, "web", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.OwnsHost(tt.host, tt.repo, tt.pr, tt.service)
			if (err == nil) != tt.ok {
				t.Fatalf("OwnsHost(%q, %q, %d, %q) = %v, want ok %v", tt.host, tt.repo, tt.pr, tt.service, err, tt.ok)
			}
		})
	}
}
