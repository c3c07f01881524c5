package lifetime

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	created := t0.Add(-48 * time.Hour)
	day := 24 * time.Hour
	tests := []struct {
		name     string
		ttl      time.Duration
		lastPush time.Time
		created  time.Time
		keep     Keep
		wantAt   time.Time
		wantOK   bool
	}{
		{"counted from the last push", day, t0, created, Keep{}, t0.Add(day), true},
		{"from creation when no push is known", day, time.Time{}, created, Keep{}, created.Add(day), true},
		{"no time known: never", day, time.Time{}, time.Time{}, Keep{}, time.Time{}, false},
		{"ttl 0: never", 0, t0, created, Keep{}, time.Time{}, false},
		{"negative ttl: never", -time.Hour, t0, created, Keep{}, time.Time{}, false},
		{"kept forever: never", day, t0, created, Keep{Forever: true}, time.Time{}, false},
		{"kept beyond the ttl: the keep's end", day, t0, created, Keep{Until: t0.Add(3 * day)}, t0.Add(3 * day), true},
		{"kept less long than the ttl: the ttl's end", day, t0, created, Keep{Until: t0.Add(time.Hour)}, t0.Add(day), true},
		{"a keep that ended long ago changes nothing", day, t0, created, Keep{Until: t0.Add(-day)}, t0.Add(day), true},
		{"forever wins over until", day, t0, created, Keep{Forever: true, Until: t0.Add(3 * day)}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, ok := Expiry(tt.ttl, tt.lastPush, tt.created, tt.keep)
			if ok != tt.wantOK || !at.Equal(tt.wantAt) {
				t.Errorf("Expiry = %v %v, want %v %v", at, ok, tt.wantAt, tt.wantOK)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name string
		ttl  time.Duration
		push time.Time
		keep Keep
		now  time.Time
		want bool
	}{
		{"within the ttl", day, t0, Keep{}, t0.Add(day - time.Second), false},
		{"at the ttl's last instant", day, t0, Keep{}, t0.Add(day), false},
		{"past the ttl", day, t0, Keep{}, t0.Add(day + time.Nanosecond), true},
		{"past the ttl but kept", day, t0, Keep{Until: t0.Add(2 * day)}, t0.Add(day + time.Hour), false},
		{"through the keep's last instant", day, t0, Keep{Until: t0.Add(2 * day)}, t0.Add(2 * day), false},
		{"past the ttl and the keep", day, t0, Keep{Until: t0.Add(2 * day)}, t0.Add(2*day + time.Nanosecond), true},
		{"kept forever", day, t0, Keep{Forever: true}, t0.Add(365 * day), false},
		{"ttl 0", 0, t0, Keep{}, t0.Add(365 * day), false},
		{"no time known", day, time.Time{}, Keep{}, t0.Add(365 * day), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expired(tt.ttl, tt.push, time.Time{}, tt.keep, tt.now); got != tt.want {
				t.Errorf("Expired = %v, want %v", got, tt.want)
			}
		})
	}
}
