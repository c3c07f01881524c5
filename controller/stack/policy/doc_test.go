package policy

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the rule table in docs/security.md from Rules()")

const (
	docPath   = "../../../docs/security.md"
	docBegin  = "<!-- rules:begin (generated from controller/stack/policy.Rules; go test ./controller/stack/policy -run TestDocMirrorsRules -update) -->\n"
	docEnd    = "<!-- rules:end -->"
	ruleIDPat = `SW-[A-Z]+-\d{3}`
)

// TestDocMirrorsRules fails when docs/security.md and the rule table in
// code disagree: a rule added, removed or reworded on one side only.
func TestDocMirrorsRules(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(docPath))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, docBegin)
	j := strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no rule table between %q and %q", docPath, strings.TrimSpace(docBegin), docEnd)
	}
	table := doc[i+len(docBegin) : j]
	want := MarkdownTable()
	if *update {
		doc = doc[:i+len(docBegin)] + want + doc[j:]
		if err := os.WriteFile(filepath.FromSlash(docPath), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	inCode := map[string]bool{}
	for _, r := range append(Rules(), RetiredRules()...) {
		inCode[r.ID] = true
	}
	inTable := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if m := regexp.MustCompile(`^\| (` + ruleIDPat + `) \|`).FindStringSubmatch(line); m != nil {
			inTable[m[1]] = true
		}
	}
	for id := range inCode {
		if !inTable[id] {
			t.Errorf("rule %s is in the code but not in the table of %s", id, docPath)
		}
	}
	for id := range inTable {
		if !inCode[id] {
			t.Errorf("rule %s is in the table of %s but not in the code", id, docPath)
		}
	}
	// Rule IDs mentioned anywhere in the prose must exist too.
	for _, id := range regexp.MustCompile(ruleIDPat).FindAllString(doc, -1) {
		if !inCode[id] {
			t.Errorf("%s mentions %s, which is not a rule", docPath, id)
		}
	}
	if table != want {
		t.Errorf("the rule table of %s differs from Rules(); regenerate it with\n\tgo test ./controller/stack/policy -run TestDocMirrorsRules -update", docPath)
	}
}
