package swarm

import (
	"strings"
	"testing"
)

func TestPrivilegeNote(t *testing.T) {
	for _, tc := range []struct {
		api  string
		note bool
	}{{"1.41", true}, {"1.43", true}, {"", true}, {"1.44", false}, {"1.47", false}} {
		got := privilegeNote(tc.api)
		if (got != "") != tc.note {
			t.Errorf("API %q: note %q, want one: %v", tc.api, got, tc.note)
		}
		if got != "" && (!strings.Contains(got, "no-new-privileges") || !strings.Contains(got, "docs/security.md")) {
			t.Errorf("API %q: note %q does not say what is missing and where to read more", tc.api, got)
		}
	}
}
