package policy

import "testing"

func TestSubpathProblem(t *testing.T) {
	for sub, bad := range map[string]bool{
		"":                 false,
		"data":             false,
		"site/uploads":     false,
		"a..b/c":           false,
		"..":               true,
		"../../..":         true,
		"data/../../other": true,
		`data\..\..`:       true,
		"/etc":             true,
	} {
		if got := subpathProblem(sub) != ""; got != bad {
			t.Errorf("subpathProblem(%q) = %q, want a problem: %v", sub, subpathProblem(sub), bad)
		}
	}
}
