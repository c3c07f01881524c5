package stack

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// fakeIPTables is an in-memory iptables filter table: enough of -S, -C, -A,
// -I, -D and -N for the firewall's logic.
type fakeIPTables struct {
	chains map[string][]string // chain → its rules as `iptables -S` prints them
}

func (f *fakeIPTables) run(_ context.Context, args ...string) ([]byte, error) {
	verb, chain := args[0], args[1]
	rules, exists := f.chains[chain]
	rule := "-A " + chain + " " + strings.Join(args[2:], " ")
	if verb == "-I" && len(args) > 2 && args[2] == "1" {
		rule = "-A " + chain + " " + strings.Join(args[3:], " ")
	}
	switch verb {
	case "-S":
		if !exists {
			return []byte("iptables: No chain/target/match by that name."), errFake
		}
		return []byte(strings.Join(append([]string{"-N " + chain}, rules...), "\n")), nil
	case "-N":
		f.chains[chain] = nil
	case "-C":
		if !slices.Contains(rules, rule) {
			return nil, errFake
		}
	case "-A":
		f.chains[chain] = append(rules, rule)
	case "-I":
		f.chains[chain] = append([]string{rule}, rules...)
	case "-D":
		i := slices.Index(rules, rule)
		if i < 0 {
			return nil, errFake
		}
		f.chains[chain] = slices.Delete(rules, i, i+1)
	}
	return nil, nil
}

type fakeErr struct{}

func (fakeErr) Error() string { return "exit status 1" }

var errFake error = fakeErr{}

// Isolate refuses with REJECT, and an older Slipway's DROP rules for the
// same bridge give way to the new ones; Release leaves nothing of the bridge.
func TestIsolateRejectsAndReplacesDropRules(t *testing.T) {
	const br = "br-0123456789ab"
	oldInput := "-A " + Chain + " -i " + br + " -m conntrack ! --ctstate ESTABLISHED,RELATED -m comment --comment slipway:p -j DROP"
	oldMeta := "-A DOCKER-USER -i " + br + " -d " + MetadataAddress + " -m comment --comment slipway:p -j DROP"
	other := "-A DOCKER-USER -i br-other -d " + MetadataAddress + " -m comment --comment slipway:q -j DROP"
	fake := &fakeIPTables{chains: map[string][]string{
		"INPUT":       {"-A INPUT -j " + Chain},
		Chain:         {oldInput},
		"DOCKER-USER": {oldMeta, other, "-A DOCKER-USER -j RETURN"},
	}}
	f := &IPTables{log: slogDiscard(), run: fake.run, exists: func(string) bool { return true }}
	for range 2 { // idempotent
		if err := f.Isolate(context.Background(), "p", br); err != nil {
			t.Fatal(err)
		}
	}
	wantInput := "-A " + Chain + " " + strings.Join(inputRule("p", br), " ")
	wantMeta := "-A DOCKER-USER " + strings.Join(metadataRule("p", br), " ")
	if got := fake.chains[Chain]; !slices.Equal(got, []string{wantInput}) {
		t.Errorf("%s = %q, want only %q", Chain, got, wantInput)
	}
	if got := fake.chains["DOCKER-USER"]; !slices.Equal(got, []string{wantMeta, other, "-A DOCKER-USER -j RETURN"}) {
		t.Errorf("DOCKER-USER = %q", got)
	}
	for _, r := range []string{wantInput, wantMeta} {
		if !strings.HasSuffix(r, "-j REJECT --reject-with icmp-admin-prohibited") {
			t.Errorf("rule %q does not refuse with ICMP admin-prohibited", r)
		}
	}
	if err := f.Release(context.Background(), br); err != nil {
		t.Fatal(err)
	}
	for chain, rules := range fake.chains {
		for _, r := range rules {
			if strings.Contains(r, br) {
				t.Errorf("Release left %q in %s", r, chain)
			}
		}
	}
}
