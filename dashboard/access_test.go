package dashboard

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestListSaysWhenPreviewsArePublic(t *testing.T) {
	note := "Previews of acme/docs are public: anyone who finds their host can open them."
	_, ts := newTestServer(t, Options{Engine: &fakeEngine{}, Insecure: true, AccessNote: note})
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "data-access-note>"+note) {
		t.Fatalf("%d: the list page does not say which previews are public", resp.StatusCode)
	}
}
