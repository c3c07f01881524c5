package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Violation is one broken rule.
type Violation struct {
	// Rule is the rule ID, e.g. "SW-PRIV-001".
	Rule string
	// File is the compose file (relative to the checkout) for pre-load
	// violations; empty for violations found in the loaded project.
	File string
	// Service is the service the field belongs to; empty for top-level keys
	// (networks, volumes, secrets, configs, jobs, include), whose Field then
	// starts with the key.
	Service string
	// Field is the offending field, e.g. "volumes[0].source",
	// "networks.backend.driver".
	Field string
	// Value is the offending value as written (or resolved).
	Value string
	// Message says why it is rejected.
	Message string
}

// String renders the violation on one line, e.g.
//
//	SW-MNT-002 service "web": volumes[0].source = "/var/run/docker.sock": the Docker engine socket is root on the host
func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(v.Rule)
	if v.File != "" {
		fmt.Fprintf(&b, " %s:", v.File)
	}
	if v.Service != "" {
		fmt.Fprintf(&b, " service %q:", v.Service)
	}
	b.WriteString(" ")
	b.WriteString(v.Field)
	if v.Value != "" {
		b.WriteString(" = ")
		b.WriteString(strconv.Quote(v.Value))
	}
	if v.Message != "" {
		b.WriteString(": ")
		b.WriteString(v.Message)
	}
	return b.String()
}

// Violations is a list of violations; as an error it lists them all.
type Violations []Violation

// Error lists every violation, one per line.
func (vs Violations) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "compose security policy: %d violation(s)", len(vs))
	for _, v := range vs {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}

// Err returns vs as an error, or nil when there are none.
func (vs Violations) Err() error {
	if len(vs) == 0 {
		return nil
	}
	return vs
}

// sortViolations orders violations by file, service, field and rule, so that
// output is stable whatever the map order of the project.
func sortViolations(vs []Violation) {
	slices.SortStableFunc(vs, func(a, b Violation) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Service, b.Service),
			compareFields(a.Field, b.Field),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Value, b.Value),
		)
	})
}

// compareFields compares field paths with their indexes numerically, so
// that volumes[2] sorts before volumes[10].
func compareFields(a, b string) int {
	for a != "" && b != "" {
		ia, ib := strings.IndexByte(a, '['), strings.IndexByte(b, '[')
		if ia < 0 || ib < 0 || a[:ia] != b[:ib] {
			break
		}
		ja, jb := strings.IndexByte(a[ia:], ']'), strings.IndexByte(b[ib:], ']')
		if ja < 0 || jb < 0 {
			break
		}
		na, errA := strconv.Atoi(a[ia+1 : ia+ja])
		nb, errB := strconv.Atoi(b[ib+1 : ib+jb])
		if errA != nil || errB != nil {
			break
		}
		if na != nb {
			return cmp.Compare(na, nb)
		}
		a, b = a[ia+ja+1:], b[ib+jb+1:]
	}
	return cmp.Compare(a, b)
}
