package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Firewall keeps a preview's networks from reaching the host: its services
// (the controller's ports, sshd, databases) and the cloud metadata address.
// Docker already keeps bridge networks apart from each other; the proxy
// (on the host) still dials into the networks, since only new connections
// from them are refused.
type Firewall interface {
	// Isolate protects the bridge of one project network. It is idempotent.
	Isolate(ctx context.Context, project, bridge string) error
	// Release removes the rules of a bridge. It is idempotent.
	Release(ctx context.Context, bridge string) error
}

// MetadataAddress is the cloud metadata service every major cloud answers
// on; a preview container must not read the host's credentials from it.
const MetadataAddress = "169.254.169.254"

// IPTables is a Firewall over the iptables command (the nf_tables or legacy
// backend Docker itself uses). Its rules live in one chain of its own,
// SLIPWAY-INPUT, jumped to from INPUT, plus one DOCKER-USER rule per bridge
// for the metadata address.
type IPTables struct {
	bin    string
	log    *slog.Logger
	mu     sync.Mutex
	run    func(ctx context.Context, args ...string) ([]byte, error)
	exists func(iface string) bool // whether a network interface exists
}

// Chain is the filter chain that holds Slipway's INPUT rules.
const Chain = "SLIPWAY-INPUT"

// ErrNoFirewall says iptables cannot be used here (not root, no binary, or
// inside a container whose rules would not protect the host).
var ErrNoFirewall = errors.New("iptables is not available")

// NewIPTables returns a firewall over iptables after checking that it can
// be used: the binary exists and the process may change rules.
func NewIPTables(ctx context.Context, log *slog.Logger) (*IPTables, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: changing firewall rules needs root", ErrNoFirewall)
	}
	bin, err := exec.LookPath("iptables")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoFirewall, err)
	}
	f := &IPTables{bin: bin, log: log, exists: func(iface string) bool {
		_, err := os.Stat("/sys/class/net/" + iface)
		return err == nil
	}}
	f.run = func(ctx context.Context, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, f.bin, append([]string{"-w", "5"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.Bytes(), err
	}
	if out, err := f.run(ctx, "-S", "INPUT"); err != nil {
		return nil, fmt.Errorf("%w: iptables -S INPUT: %v: %s", ErrNoFirewall, err, strings.TrimSpace(string(out)))
	}
	if err := f.ensureChain(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// refuse is the target of Slipway's rules. A refusal answered with ICMP
// "administratively prohibited" fails a connection at once (EHOSTUNREACH,
// "No route to host") where a silent drop would hang it until a timeout: a
// build's RUN step or an app probing the host fails fast and says why, and
// whether an address is blocked never depends on how long one waits.
var refuse = []string{"-j", "REJECT", "--reject-with", "icmp-admin-prohibited"}

// inputRule and metadataRule are the rule specs of one bridge (without the
// -A/-D/-C verb and chain).
func inputRule(project, bridge string) []string {
	return append([]string{"-i", bridge, "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED",
		"-m", "comment", "--comment", "slipway:" + project}, refuse...)
}

func metadataRule(project, bridge string) []string {
	return append([]string{"-i", bridge, "-d", MetadataAddress, "-m", "comment", "--comment", "slipway:" + project}, refuse...)
}

func (f *IPTables) ensureChain(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.run(ctx, "-S", Chain); err != nil {
		if out, err := f.run(ctx, "-N", Chain); err != nil {
			// Another Slipway process (the controller and `slipway up`, say)
			// may have created it in between.
			if _, serr := f.run(ctx, "-S", Chain); serr != nil {
				return fmt.Errorf("create chain %s: %v: %s", Chain, err, strings.TrimSpace(string(out)))
			}
		}
	}
	if _, err := f.run(ctx, "-C", "INPUT", "-j", Chain); err != nil {
		if out, err := f.run(ctx, "-I", "INPUT", "1", "-j", Chain); err != nil {
			return fmt.Errorf("jump from INPUT to %s: %v: %s", Chain, err, strings.TrimSpace(string(out)))
		}
	}
	f.sweep(ctx)
	return nil
}

// sweep deletes Slipway's rules for bridges that no longer exist (a network
// removed by something other than Slipway, or while it was down).
func (f *IPTables) sweep(ctx context.Context) {
	for _, chain := range []string{Chain, "DOCKER-USER"} {
		out, err := f.run(ctx, "-S", chain)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			bridge := ruleBridge(line, chain)
			if bridge == "" || f.exists(bridge) {
				continue
			}
			if spec, ok := ruleOf(line, chain, bridge); ok {
				if out, err := f.run(ctx, append([]string{"-D", chain}, spec...)...); err != nil {
					f.log.Warn("delete a stale firewall rule", "bridge", bridge, "err", strings.TrimSpace(string(out)))
				}
			}
		}
	}
}

// ruleBridge is the input interface of one of Slipway's rules, else "".
func ruleBridge(line, chain string) string {
	fields := splitRule(line)
	if len(fields) < 3 || fields[0] != "-A" || fields[1] != chain {
		return ""
	}
	iface, ours := "", false
	for i := 2; i+1 < len(fields); i++ {
		switch fields[i] {
		case "-i":
			iface = fields[i+1]
		case "--comment":
			ours = strings.HasPrefix(fields[i+1], "slipway:")
		}
	}
	if !ours {
		return ""
	}
	return iface
}

// Isolate adds the bridge's rules unless they are there.
func (f *IPTables) Isolate(ctx context.Context, project, bridge string) error {
	if err := f.ensureChain(ctx); err != nil { // rules vanish with a host reboot; the chain too
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range []struct {
		chain string
		spec  []string
	}{{Chain, inputRule(project, bridge)}, {"DOCKER-USER", metadataRule(project, bridge)}} {
		if _, err := f.run(ctx, append([]string{"-C", r.chain}, r.spec...)...); err == nil {
			f.deleteDropRules(ctx, r.chain, bridge)
			continue
		}
		verb := "-A"
		if r.chain == "DOCKER-USER" {
			verb = "-I" // before Docker's RETURN
		}
		if out, err := f.run(ctx, append([]string{verb, r.chain}, r.spec...)...); err != nil {
			if r.chain == "DOCKER-USER" {
				// Without Docker's iptables integration there is no DOCKER-USER
				// chain; the INPUT rule still protects the host.
				f.log.Warn("cannot block the metadata address", "bridge", bridge, "err", strings.TrimSpace(string(out)))
				continue
			}
			return fmt.Errorf("isolate %s: iptables %s: %v: %s", bridge, strings.Join(r.spec, " "), err, strings.TrimSpace(string(out)))
		}
		f.deleteDropRules(ctx, r.chain, bridge)
	}
	return nil
}

// deleteDropRules deletes the bridge's rules an older Slipway added with a
// DROP target, once their REJECT replacement is in place.
func (f *IPTables) deleteDropRules(ctx context.Context, chain, bridge string) {
	out, err := f.run(ctx, "-S", chain)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		spec, ok := ruleOf(line, chain, bridge)
		if !ok || !slices.Equal(spec[len(spec)-2:], []string{"-j", "DROP"}) {
			continue
		}
		if out, err := f.run(ctx, append([]string{"-D", chain}, spec...)...); err != nil {
			f.log.Warn("delete an outdated firewall rule", "bridge", bridge, "err", strings.TrimSpace(string(out)))
		}
	}
}

// Release deletes every rule of the bridge, whatever project it was for.
func (f *IPTables) Release(ctx context.Context, bridge string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, chain := range []string{Chain, "DOCKER-USER"} {
		out, err := f.run(ctx, "-S", chain)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			spec, ok := ruleOf(line, chain, bridge)
			if !ok {
				continue
			}
			if out, err := f.run(ctx, append([]string{"-D", chain}, spec...)...); err != nil {
				errs = append(errs, fmt.Errorf("release %s: %v: %s", bridge, err, strings.TrimSpace(string(out))))
			}
		}
	}
	return errors.Join(errs...)
}

// ruleOf parses an `iptables -S chain` line and returns its spec when it is
// one of Slipway's rules for bridge.
func ruleOf(line, chain, bridge string) ([]string, bool) {
	fields := splitRule(line)
	if len(fields) < 3 || fields[0] != "-A" || fields[1] != chain {
		return nil, false
	}
	spec := fields[2:]
	iface, comment := "", ""
	for i := 0; i+1 < len(spec); i++ {
		switch spec[i] {
		case "-i":
			iface = spec[i+1]
		case "--comment":
			comment = spec[i+1]
		}
	}
	return spec, iface == bridge && strings.HasPrefix(comment, "slipway:")
}

// splitRule splits an iptables -S line, honouring double quotes.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, has := false, false
	for _, r := range strings.TrimSpace(line) {
		switch {
		case r == '"':
			inQuote, has = !inQuote, true
		case r == ' ' && !inQuote:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

// bridgeName is the Linux bridge of a Docker bridge network.
func bridgeName(id string, options map[string]string) string {
	if n := options["com.docker.network.bridge.name"]; n != "" {
		return n
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return "br-" + id
}
