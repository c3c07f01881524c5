package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFirstLine(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"one line", "build failed", 0, "build failed"},
		{"several lines", "build failed\nstep 3\n", 0, "build failed"},
		{"leading blank lines and spaces", "\n  \r\n\t  /slipway approve  \r\nthanks", 0, "/slipway approve"},
		{"carriage return line ending", "first\r\nsecond", 0, "first"},
		{"empty", "", 10, ""},
		{"only blank lines", "\n \n\t\n", 10, ""},
		{"no limit", strings.Repeat("x", 500), 0, strings.Repeat("x", 500)},
		{"exactly the limit", "abcde", 5, "abcde"},
		{"over the limit", "abcdef\nmore", 5, "abcde…"},
		{"limit counts the line, not the message", "abc\n" + strings.Repeat("x", 50), 5, "abc"},
		// "é" is 2 bytes, "€" 3 and "😀" 4: a cut inside one keeps none of it.
		{"cut inside a 2-byte character", "aéb", 2, "a…"},
		{"cut after a 2-byte character", "aéb", 3, "aé…"},
		{"cut inside a 3-byte character", "ab€cd", 3, "ab…"},
		{"cut inside a 3-byte character, 2 bytes in", "ab€cd", 4, "ab…"},
		{"cut inside a 4-byte character", "x😀y", 4, "x…"},
		{"cut right after a 4-byte character", "x😀y", 5, "x😀…"},
		{"first character longer than the limit", "😀😀", 2, "…"},
		{"Japanese text", "ビルドが失敗しました\n詳細", 10, "ビルド…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := FirstLine(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("FirstLine(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("FirstLine(%q, %d) = %q is not valid UTF-8", tc.in, tc.max, got)
			}
			if tc.max > 0 && len(strings.TrimSuffix(got, Ellipsis)) > tc.max {
				t.Errorf("FirstLine(%q, %d) = %q keeps more than %d bytes", tc.in, tc.max, got, tc.max)
			}
		})
	}
}

// Every limit over a line of mixed widths gives valid UTF-8 within the limit.
func TestFirstLineNeverSplitsACharacter(t *testing.T) {
	line := "a é € 😀 ビ"
	for max := 1; max <= len(line)+1; max++ {
		got := FirstLine(line, max)
		kept := strings.TrimSuffix(got, Ellipsis)
		if !utf8.ValidString(got) || len(kept) > max || !strings.HasPrefix(line, kept) {
			t.Errorf("FirstLine(%q, %d) = %q", line, max, got)
		}
		if max >= len(line) && got != line {
			t.Errorf("FirstLine(%q, %d) = %q, want the whole line", line, max, got)
		}
	}
}

func TestStripANSI(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "step 1/3 : FROM scratch", "step 1/3 : FROM scratch"},
		{"colours", "\x1b[1;32mok\x1b[0m done", "ok done"},
		{"erase line and cursor", "\x1b[2K\x1b[1Aprogress 50%", "progress 50%"},
		{"private mode", "\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"},
		{"window title ended by BEL", "\x1b]0;building web\x07step", "step"},
		{"hyperlink ended by ST", "see \x1b]8;;https://example.com\x1b\\docs\x1b]8;;\x1b\\ now", "see docs now"},
		{"multibyte text kept", "\x1b[31mビルド失敗\x1b[0m €", "ビルド失敗 €"},
	}
	for _, tc := range cases {
		if got := StripANSI(tc.in); got != tc.want {
			t.Errorf("%s: StripANSI(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
