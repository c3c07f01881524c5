package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkAdmit is the gate's own cost per request on the hot path.
func BenchmarkAdmit(b *testing.B) {
	keys, _ := NewKeyring([]byte(strings.Repeat("k", 32)))
	for _, mode := range []Mode{Public, GitHub} {
		b.Run(string(mode), func(b *testing.B) {
			g, _ := New(Options{Domain: "preview.test", Keys: keys, Repos: []string{"acme/shop"}, NoIndex: true,
				AccessFor:   func(string) RepoAccess { return RepoAccess{Mode: mode} },
				Permissions: &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}})
			c := g.Session("ada", 1)
			cookie := "app=1; " + c.Name + "=" + c.Value
			r := httptest.NewRequest("GET", "http://pr-7.preview.test/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r.Header = http.Header{"Cookie": {cookie}}
				if g.Admit(w, r, "acme-shop-pr-7") != 0 {
					b.Fatal("refused")
				}
			}
		})
	}
	_ = time.Now
}
