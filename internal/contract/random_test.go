package contract

import (
	"strings"
	"testing"
)

func TestRandomHostsAreStableUnguessableAndOwned(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	a := RandomLabel(key, "acme/shop", 7)
	if len(a) != 8 || a != dnsLabel(a) {
		t.Fatalf("label %q: want 8 DNS characters", a)
	}
	if RandomLabel(key, "ACME/Shop", 7) != a {
		t.Error("the label depends on the repository's case")
	}
	others := map[string]string{
		"another number":     RandomLabel(key, "acme/shop", 8),
		"another repository": RandomLabel(key, "acme/blog", 7),
		"another key":        RandomLabel([]byte(strings.Repeat("j", 32)), "acme/shop", 7),
	}
	for what, l := range others {
		if l == a {
			t.Errorf("%s gives the same label %q", what, l)
		}
	}
	tm := HostTemplates{Domain: "preview.example.com", Primary: RandomPrimaryHostTemplate, Service: RandomServiceHostTemplate, Key: key}
	primary := "pr-7-" + a + ".preview.example.com"
	if err := tm.OwnsHost(primary, "acme/shop", 7, "web"); err != nil {
		t.Errorf("primary %s: %v", primary, err)
	}
	if err := tm.OwnsHost("api-pr-7-"+a+".preview.example.com", "acme/shop", 7, "api"); err != nil {
		t.Errorf("service host: %v", err)
	}
	for _, h := range []string{"pr-7.preview.example.com", "pr-7-aaaaaaaa.preview.example.com", "pr-8-" + a + ".preview.example.com"} {
		if err := tm.OwnsHost(h, "acme/shop", 7, "web"); err == nil {
			t.Errorf("%s accepted for acme/shop#7", h)
		}
	}
	if _, err := Host(RandomPrimaryHostTemplate, HostData{Number: 7, Owner: "acme", Repo: "shop", Domain: "preview.example.com"}); err == nil ||
		!strings.Contains(err.Error(), "no host key") {
		t.Errorf("a random template without a key: %v", err)
	}
}
