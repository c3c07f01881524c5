package policy

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestMalformedSysctl(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"net.ipv4.tcp_keepalive_time", true},
		{"net.ipv4.conf.br-1a2b.rp_filter", true},
		{"kernel.shm_rmid_forced", true},
		{"net.ipv4.conf.all/../../kernel/core_pattern", false},
		{"net/ipv4/ip_forward", false},
		{"net.ipv4..ip_forward", false},
		{".net.ipv4.ip_forward", false},
		{"net.ipv4.ip_forward.", false},
		{"net.ipv4.conf.eth0.100.rp_filter", true},
		{"Net.IPv4.ip_forward", false},
		{"net.ipv4.ip forward", false},
		{"net.ipv4.ip_forward\n", false},
		{"", false},
		{"net.ipv4.conf.*", false},
	} {
		if got := malformedSysctl(tc.key) == ""; got != tc.ok {
			t.Errorf("malformedSysctl(%q) = %q, want ok=%v", tc.key, malformedSysctl(tc.key), tc.ok)
		}
	}
}

// A malformed key is refused before the operator's prefix could match it.
func TestSysctlPrefixDoesNotAdmitTraversal(t *testing.T) {
	root, files := hostile(t, "priv-sysctl-traversal")
	vs, _ := evaluate(t, root, files, Options{Sysctls: []string{"net.ipv4.conf.*"}})
	if got := rulesOf(vs); !slices.Equal(got, []string{Sysctls}) {
		t.Errorf("rules = %v, want [%s]", got, Sysctls)
	}
	vs, _ = evaluate(t, root, files, Options{Allow: []string{Sysctls}})
	if len(vs) != 0 {
		t.Errorf("relaxed by policy.allow: %v", vs)
	}
}

func TestReservedNames(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), `
services:
  github:
    image: busybox
    links: ["db:LocalHost", "db:database"]
    networks:
      default:
        aliases: [vault, api]
  db:
    image: busybox
    container_name: shop-db
`)
	files := []string{filepath.Join(root, "compose.yaml")}
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"built-in names", Options{}, []string{"github links[0]"}},
		{"names the caller adds", Options{ReservedNames: []string{"GitHub", "vault"}},
			[]string{"github links[0]", "github name", "github networks.default.aliases[0]"}},
		{"relaxed", Options{Allow: []string{ReservedName}, ReservedNames: []string{"github"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, _ := evaluate(t, root, files, tc.opts)
			var got []string
			for _, v := range vs {
				if v.Rule != ReservedName {
					t.Errorf("unexpected %s", v)
				}
				got = append(got, v.Service+" "+v.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIPv6Network(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), `
services:
  web:
    image: busybox
    networks: [v4, v6, off]
networks:
  v4: {}
  v6:
    enable_ipv6: true
  off:
    enable_ipv6: false
`)
	vs, _ := evaluate(t, root, []string{filepath.Join(root, "compose.yaml")}, Options{})
	var got []string
	for _, v := range vs {
		got = append(got, v.Rule+" "+v.Field)
	}
	if want := []string{"SW-NET-008 networks.v6.enable_ipv6"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
