package benchkit

import (
	"slices"
	"testing"
	"time"
)

func TestMedianSpreadAndLists(t *testing.T) {
	for _, tt := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 2},
	} {
		in := slices.Clone(tt.in)
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median sorted its input")
		}
	}
	if got := Spread([]time.Duration{2 * time.Second, 500 * time.Millisecond}); got != "0.50–2.00" {
		t.Errorf("Spread = %q", got)
	}
	if got := FmtDur(1234 * time.Millisecond); got != "1.23s" || FmtDur(0) != "-" {
		t.Errorf("FmtDur = %q", got)
	}
	if got := SplitList(" a, ,b,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SplitList = %q", got)
	}
	if len(RandomHex(4)) != 8 {
		t.Error("RandomHex length")
	}
}
