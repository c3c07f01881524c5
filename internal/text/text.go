// Package text holds the small string helpers that the controller, the
// CLI, the dashboard and the benchmarks share: the first line of a message
// and terminal escapes removed from a log. It imports nothing of Slipway.
package text

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Ellipsis ends a line that FirstLine cut short.
const Ellipsis = "…"

// FirstLine returns the first line of s that is not blank, without its
// surrounding white space. When max > 0 and the line is longer than max
// bytes, it is cut at the last character boundary within max bytes (never
// inside a UTF-8 character) and Ellipsis is appended.
func FirstLine(s string, max int) string {
	line := ""
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	if max <= 0 || len(line) <= max {
		return line
	}
	cut := max
	// A UTF-8 character is at most utf8.UTFMax bytes: back up over its
	// continuation bytes (no further, should s not be UTF-8).
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + Ellipsis
}

// ansiEscape matches the terminal escapes that build and service logs
// carry: CSI sequences (colours, cursor movement, "\x1b[2K") and OSC
// sequences (window titles, hyperlinks) ended by BEL or by ST ("\x1b\\").
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)`)

// StripANSI returns s without terminal escape sequences.
func StripANSI(s string) string {
	return ansiEscape.ReplaceAllString(s, "")
}
