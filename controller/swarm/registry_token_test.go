package swarm

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bearerChallenge
		ok     bool
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"`,
			bearerChallenge{"https://auth.docker.io/token", "registry.docker.io", "repository:samalba/my-app:pull,push"}, true},
		{`bearer realm="https://h/token", service="reg"`, bearerChallenge{"https://h/token", "reg", ""}, true},
		{`Bearer realm=https://h/token,scope=registry:catalog:*`, bearerChallenge{"https://h/token", "", "registry:catalog:*"}, true},
		{`Basic realm="Registry Realm"`, bearerChallenge{}, false},
		{`Bearer service="reg"`, bearerChallenge{}, false},
		{`Bearer realm="https://h/token`, bearerChallenge{}, false},
		{``, bearerChallenge{}, false},
	} {
		got, ok := parseBearer(tc.header)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseBearer(%q) = %+v %v, want %+v %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTokenURL(t *testing.T) {
	c := bearerChallenge{Realm: "https://auth.example/token?account=x", Service: "reg.example", Scope: "repository:a-b:delete,pull"}
	got, err := tokenURL(c, true)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	if q := u.Query(); q.Get("service") != "reg.example" || q.Get("scope") != "repository:a-b:delete,pull" || q.Get("account") != "x" || u.Host != "auth.example" {
		t.Errorf("token URL %s", got)
	}
	for _, tc := range []struct {
		realm string
		creds bool
		err   string
	}{
		{"http://auth.example/token", true, "only sent over https"},
		{"http://auth.example/token", false, ""},
		{"http://127.0.0.1:5001/token", true, ""},
		{"http://localhost:5001/token", true, ""},
		{"ftp://auth.example/token", false, "not an http(s) URL"},
		{"/token", false, "not an http(s) URL"},
	} {
		_, err := tokenURL(bearerChallenge{Realm: tc.realm}, tc.creds)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("tokenURL(%s, credentials %v): %v, want %q", tc.realm, tc.creds, err, tc.err)
		}
	}
}
