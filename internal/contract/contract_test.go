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
