package config

import (
	"strings"
	"testing"
)

func TestRepositoriesWithTheSameProjectNameRefused(t *testing.T) {
	for _, tc := range []struct {
		repos, want string
	}{
		{"[{name: a-b/c}, {name: a/b-c}]", "repos a-b/c and a/b-c give their pull requests the same project name (a-b-c-pr-1 for #1)"},
		{"[{name: acme/my.app}, {name: acme/my-app}]", "repos acme/my.app and acme/my-app"},
		{"[{name: acme/shop}, {name: acme/shop-pr-1}]", ""},
		{"[{name: acme/shop}, {name: acme/blog}]", ""},
	} {
		_, err := ParseController([]byte("github: {token: t, webhook_secret: s}\nrepos: "+tc.repos+"\n"), envMap(nil))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.repos, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.repos, err, tc.want)
		}
	}
}
