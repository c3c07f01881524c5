package controller

import (
	"io"
	"maps"
	"slices"
	"strings"
)

// minSecretLen is the shortest value masked: shorter ones would mask
// ordinary words ("on", "1") and reveal more than they hide.
const minSecretLen = 4

// Masker replaces secret values with *** in text Slipway shows to people:
// build logs, comments, status pages, the dashboard.
type Masker struct {
	r *strings.Replacer
}

// NewMasker masks every value of secrets (names are only for the caller).
func NewMasker(secrets map[string]string) *Masker {
	var pairs []string
	values := map[string]bool{}
	for _, v := range secrets {
		for _, line := range strings.Split(v, "\n") { // a multi-line secret (a key) is masked line by line
			if line = strings.TrimSpace(line); len(line) >= minSecretLen {
				values[line] = true
			}
		}
	}
	// Longest first, so a secret containing another is masked whole.
	vs := slices.Collect(maps.Keys(values))
	slices.SortFunc(vs, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vs {
		pairs = append(pairs, v, "***")
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret replaced.
func (m *Masker) String(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// Writer masks what is written through it. Each Write is masked on its own,
// so callers write whole lines (the stack engine's build log does).
func (m *Masker) Writer(w io.Writer) io.Writer { return maskWriter{m: m, w: w} }

type maskWriter struct {
	m *Masker
	w io.Writer
}

func (mw maskWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(mw.w, mw.m.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
