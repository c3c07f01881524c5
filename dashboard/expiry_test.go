package dashboard

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
)

// An environment whose .slipway.yml set ttl: 2h at its last deploy expires
// two hours after its last push, in the API and on the list page, as the
// controller removes it; not after the default week.
func TestExpiresFollowsSlipwayYmlTTL(t *testing.T) {
	f := newListingFixture(t, func(o *Options) {
		o.RepoTTL = func(string) *config.Duration { return nil } // slipway.yaml sets none
	})
	ctx := context.Background()
	ttl := config.Duration(2 * time.Hour)
	if err := f.st.SetFileTTL(ctx, "acme-shop-pr-1", &ttl); err != nil {
		t.Fatal(err)
	}
	h, err := f.st.Environment(ctx, "acme-shop-pr-1")
	if err != nil {
		t.Fatal(err)
	}
	want := h.LastPush.Add(2 * time.Hour)
	d, err := f.client.Environment(ctx, "acme-shop-pr-1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Expires.Equal(want) {
		t.Errorf("API expires %v, want %v (last push + the .slipway.yml ttl; the default would be %v)", d.Expires, want, h.LastPush.Add(config.DefaultTTL))
	}
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `datetime="`+isoTime(want)+`"`) {
		t.Errorf("list page (%d) does not show the expiry %s", resp.StatusCode, isoTime(want))
	}
}
