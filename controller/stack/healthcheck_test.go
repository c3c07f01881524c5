package stack

import (
	"reflect"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
)

func TestHasStartInterval(t *testing.T) {
	for v, want := range map[string]bool{
		"":     false, // unknown: never risk a refused create
		"1.24": false,
		"1.41": false, // Engine 20.10
		"1.43": false, // Engine 24
		"1.44": true,  // Engine 25
		"1.45": true,
		"1.51": true,
		"2.0":  true,
	} {
		if got := hasStartInterval(v); got != want {
			t.Errorf("hasStartInterval(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestLowerVersion(t *testing.T) {
	for _, tt := range []struct{ a, b, want string }{
		{"1.51", "1.41", "1.41"},
		{"1.41", "1.51", "1.41"},
		{"1.9", "1.10", "1.9"}, // numeric, not lexical
		{"", "1.41", "1.41"},
		{"1.41", "", "1.41"},
		{"", "", ""},
	} {
		if got := lowerVersion(tt.a, tt.b); got != tt.want {
			t.Errorf("lowerVersion(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestWithFastStart(t *testing.T) {
	cmd := []string{"CMD", "wget", "-q", "http://127.0.0.1/"}
	hc := func(test []string, interval, period, startInterval time.Duration) *container.HealthConfig {
		return &container.HealthConfig{Test: test, Interval: interval, Timeout: 2 * time.Second, Retries: 3, StartPeriod: period, StartInterval: startInterval}
	}
	tests := []struct {
		name          string
		in            *container.HealthConfig
		startInterval bool
		want          *container.HealthConfig
	}{
		{"no healthcheck", nil, true, nil},
		{"new engine: a short start interval and a start period", hc(cmd, time.Second, 0, 0), true, hc(cmd, time.Second, fastStartPeriod, fastProbeInterval)},
		{"new engine: the file's start period is kept", hc(cmd, time.Second, 5*time.Second, 0), true, hc(cmd, time.Second, 5*time.Second, fastProbeInterval)},
		{"new engine: the file's own start interval is kept", hc(cmd, time.Second, 0, 2*time.Second), true, hc(cmd, time.Second, 0, 2*time.Second)},
		{"new engine: CMD-SHELL too", hc([]string{"CMD-SHELL", "true"}, 0, 0, 0), true, hc([]string{"CMD-SHELL", "true"}, 0, fastStartPeriod, fastProbeInterval)},
		{"new engine: disabled check untouched", hc([]string{"NONE"}, 0, 0, 0), true, hc([]string{"NONE"}, 0, 0, 0)},
		{"new engine: inherited test untouched", hc(nil, time.Second, 0, 0), true, hc(nil, time.Second, 0, 0)},
		{"old engine: nothing added", hc(cmd, time.Second, 0, 0), false, hc(cmd, time.Second, 0, 0)},
		{"old engine: the file's start interval is dropped", hc(cmd, time.Second, 3*time.Second, 2*time.Second), false, hc(cmd, time.Second, 3*time.Second, 0)},
		{"old engine: dropped from an inherited test too", hc(nil, 0, 0, time.Second), false, hc(nil, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *container.HealthConfig
			if tt.in != nil {
				c := *tt.in
				before = &c
			}
			got := withFastStart(tt.in, tt.startInterval)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("withFastStart = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.in, before) {
				t.Errorf("withFastStart modified its input: %+v, was %+v", tt.in, before)
			}
		})
	}
}

// A compose file's start_interval reaches the container config (and the
// config hash); createConfig decides whether the engine gets it.
func TestHealthcheckCarriesStartInterval(t *testing.T) {
	d := func(x time.Duration) *types.Duration { v := types.Duration(x); return &v }
	got := healthcheck(&types.HealthCheckConfig{Test: []string{"CMD", "true"}, Interval: d(time.Second), StartPeriod: d(5 * time.Second), StartInterval: d(200 * time.Millisecond)})
	want := &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, StartPeriod: 5 * time.Second, StartInterval: 200 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("healthcheck = %+v, want %+v", got, want)
	}
}

func TestProbePause(t *testing.T) {
	for _, tc := range []struct {
		uptime, want time.Duration
	}{
		{0, earlyProbeInterval},
		{10 * time.Millisecond, earlyProbeInterval},
		{earlyProbeWindow - time.Nanosecond, earlyProbeInterval},
		{earlyProbeWindow, fastProbeInterval},
		{5 * time.Second, fastProbeInterval},
		// A clock that puts the start in the future (skew between the
		// daemon's clock and ours) is a fresh container.
		{-time.Second, earlyProbeInterval},
	} {
		if got := probePause(tc.uptime); got != tc.want {
			t.Errorf("probePause(%s) = %s, want %s", tc.uptime, got, tc.want)
		}
	}
}
