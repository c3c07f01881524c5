package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInternalRegistry(t *testing.T) {
	for _, tc := range []struct {
		domain   string
		internal bool
	}{
		// Public registries.
		{"docker.io", false},
		{"ghcr.io", false},
		{"registry-1.docker.io:443", false},
		{"public.ecr.aws", false},
		{"8.8.8.8:5000", false},
		{"[2001:4860:4860::8888]:5000", false},
		{"1.2.3.4.example.com", false},
		// Loopback, in every notation the resolver accepts.
		{"localhost", true},
		{"localhost:5000", true},
		{"LOCALHOST:5000", true},
		{"registry.localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.1:5000", true},
		{"0x7f.0.0.1", true},
		{"0x7f000001.com", false}, // a name, not a literal
		{"0177.0.0.1", true},
		{"[::1]:5000", true},
		{"[::ffff:127.0.0.1]:5000", true},
		{"[::ffff:7f00:1]", true},
		{"[::127.0.0.1]", true},
		{"0.0.0.0:5000", true},
		{"[::]:5000", true},
		// Link-local: the metadata service.
		{"169.254.169.254:80", true},
		{"169.254.169.254", true},
		{"[fe80::1%25eth0]:5000", true},
		{"metadata.google.internal", true},
		{"host.docker.internal:5000", true},
		// Private networks and other non-public ranges.
		{"10.0.0.5", true},
		{"172.16.3.4:5000", true},
		{"192.168.1.10:5000", true},
		{"100.64.0.1", true},
		{"[fd00::1]:5000", true},
		{"[64:ff9b::a00:5]", true},
		// Names that only resolve on the host or its site.
		{"registry:5000", true},
		{"registry", true},
		{"nas.local:5000", true},
		{"registry.lan", true},
		{"registry.home.arpa", true},
		{"box.localdomain", true},
		// Wildcard DNS services embedding an address.
		{"10.0.0.5.nip.io:5000", true},
		{"10-0-0-5.sslip.io", true},
		{"127-0-0-1.sslip.io:2375", true},
		{"8.8.8.8.nip.io", false},
	} {
		if got := internalRegistry(tc.domain) != ""; got != tc.internal {
			t.Errorf("internalRegistry(%q) = %q, want internal=%v", tc.domain, internalRegistry(tc.domain), tc.internal)
		}
	}
}

func TestParseInetAton(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"10.1.2", "10.1.0.2"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F.1", "127.0.0.1"},
		{"0177.0.0.01", "127.0.0.1"},
		{"169.254.43518", "169.254.169.254"},
		{"256.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"08.0.0.1", ""},
		{"1_0.0.0.1", ""},
		{"0o1.0.0.1", ""},
		{"+1.0.0.1", ""},
		{"1..1", ""},
		{"example", ""},
		{"1.2.3.256", ""},
		{"1.65536", "1.1.0.0"},
		{"1.16777216", ""},
	} {
		a, ok := parseInetAton(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("parseInetAton(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestImageJudge(t *testing.T) {
	j := imageJudge{
		project:           "acme-rw-pr-9",
		services:          []string{"web", "Worker_1"},
		allowedRegistries: []string{"registry.internal:5000", "10.0.0.7"},
	}
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"postgres:16-alpine", nil},
		{"nginxdemos/hello", nil},
		{"docker.elastic.co/elasticsearch/elasticsearch:8.15.0", nil},
		{"redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", nil},
		{"cafe:latest", nil},
		{"", nil},
		// The project's own images.
		{"acme-rw-pr-9-web:0123456789ab", nil},
		{"acme-rw-pr-9-worker_1", nil},
		// Another project's, under any spelling the engine resolves the same.
		{"acme-rw-pr-12-web:0123456789ab", []string{ForeignImage}},
		{"docker.io/library/acme-rw-pr-12-web:0123456789ab", []string{ForeignImage}},
		{"index.docker.io/library/acme-rw-pr-12-web", []string{ForeignImage}},
		{"acme-rw-pr-12-web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{ForeignImage}},
		{"other-repo-pr-9-web:0123456789ab", []string{ForeignImage}},
		{"acme-rw-pr-9-db:0123456789ab", []string{ForeignImage}},
		{"acme-rw-pr-9-web-pr-3-api", []string{ForeignImage}},
		{"local-demo-pr-1-web", []string{ForeignImage}},
		{"registry.internal:5000/acme-rw-pr-12-web", []string{ForeignImage}},
		// A public registry's image is not one Slipway built.
		{"ghcr.io/acme/rw-pr-12-web:0123456789ab", nil},
		{"acme/rw-pr-12-web", nil},
		// Image IDs.
		{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{ForeignImage}},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{ForeignImage}},
		{"3f4a5b", []string{ForeignImage}},
		{"cafe", []string{ForeignImage}},
		// Unparseable: fail closed.
		{"Foo", []string{ForeignImage}},
		{"UPPER/case", []string{PrivateRegistry}}, // an upper-case first component is a registry host
		{"a//b", []string{ForeignImage}},
		// Registries.
		{"localhost:5000/x", []string{PrivateRegistry}},
		{"127.0.0.1:5000/x", []string{PrivateRegistry}},
		{"169.254.169.254:80/x", []string{PrivateRegistry}},
		{"10.0.0.5/x", []string{PrivateRegistry}},
		{"[::1]:5000/x", []string{PrivateRegistry}},
		{"localhost:5000/acme-rw-pr-12-web", []string{PrivateRegistry, ForeignImage}},
		// Allowed by the operator: exact host:port, or a host for every port.
		{"registry.internal:5000/x", nil},
		{"REGISTRY.internal:5000/x", nil}, // host names are case-insensitive
		{"registry.internal:5001/x", []string{PrivateRegistry}},
		{"10.0.0.7:5000/x", nil},
		{"10.0.0.7/x", nil},
	} {
		var got []string
		for _, f := range j.judge(tc.ref) {
			got = append(got, f.rule)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("judge(%q) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

// On a swarm, Slipway pushes every preview's builds to its own registry,
// often under a public name: a pull request may name its own images there,
// never another preview's.
func TestImageJudgeOwnRegistry(t *testing.T) {
	j := imageJudge{project: "acme-rw-pr-9", services: []string{"web"}, ownRegistry: "registry.example.com:5000"}
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"registry.example.com:5000/acme-rw-pr-5-api:0123456789ab", []string{ForeignImage}},
		{"REGISTRY.example.com:5000/acme-rw-pr-5-api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{ForeignImage}},
		{"registry.example.com:5000/acme-rw-pr-9-web:0123456789ab", nil},
		{"registry.example.com:5000/postgres:16", []string{ForeignImage}},
		{"registry.example.com:5000/internal/billing:prod", []string{ForeignImage}},
		{"registry.example.com/acme-rw-pr-5-api", nil}, // another registry (no port): public
		{"postgres:16", nil},
	} {
		var got []string
		for _, f := range j.judge(tc.ref) {
			got = append(got, f.rule)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("judge(%q) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}

func TestRegistryAllowed(t *testing.T) {
	allowed := []string{" Registry.Internal:5000 ", "10.0.0.7", "[fd00::1]"}
	for _, tc := range []struct {
		domain string
		want   bool
	}{
		{"registry.internal:5000", true},
		{"registry.internal", false},
		{"registry.internal:443", false},
		{"10.0.0.7", true},
		{"10.0.0.7:5000", true},
		{"10.0.0.70", false},
		{"[fd00::1]:5000", true},
		{"[fd00::2]:5000", false},
	} {
		if got := registryAllowed(tc.domain, allowed); got != tc.want {
			t.Errorf("registryAllowed(%q) = %v, want %v", tc.domain, got, tc.want)
		}
	}
}

// The image rules reach every place an image is named: services and jobs
// that are not built, pre_start hooks, build contexts and cache sources;
// a built service's image: is only the tag and is not judged.
func TestImageFields(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), `
services:
  built:
    image: localhost:5000/whatever
    build:
      context: .
      dockerfile_inline: "FROM alpine\n"
      additional_contexts:
        base: docker-image://10.1.2.3:5000/base
      cache_from:
        - acme-shop-pr-3-built:0123456789ab
        - type=registry,ref=registry:5000/cache
  hooked:
    image: busybox
    pre_start:
      - image: 127.0.0.1:5000/init
        command: ["true"]
  own:
    image: acme-shop-pr-7-built:0123456789ab
`)
	vs, _ := evaluate(t, root, []string{filepath.Join(root, "compose.yaml")}, Options{})
	var got []string
	for _, v := range vs {
		got = append(got, v.Service+" "+v.Rule+" "+v.Field)
	}
	want := []string{
		// Named contexts are refused (SW-BLD-011); a docker-image:// one
		// is still judged as an image.
		"built SW-BLD-011 build.additional_contexts.base",
		"built SW-IMG-002 build.additional_contexts.base",
		"built SW-IMG-001 build.cache_from[0]",
		"built SW-IMG-002 build.cache_from[1]",
		"hooked SW-IMG-002 pre_start[0].image",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	vs, _ = evaluate(t, root, []string{filepath.Join(root, "compose.yaml")},
		Options{AllowedRegistries: []string{"10.1.2.3:5000", "registry", "127.0.0.1"}})
	if got := rulesOf(vs); !slices.Equal(got, []string{AdditionalContexts, ForeignImage}) {
		t.Errorf("with allowed registries: %v", vs)
	}
}
