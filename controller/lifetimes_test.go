package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/store"
)

func TestJudgeLifetime(t *testing.T) {
	now := time.Unix(100*24*3600, 0)
	d := func(x time.Duration) *config.Duration { v := config.Duration(x); return &v }
	pushed := func(ago time.Duration) store.Environment {
		return store.Environment{EnvironmentInfo: store.EnvironmentInfo{LastPush: now.Add(-ago)}, Created: now.Add(-30 * 24 * time.Hour)}
	}
	kept := func(e store.Environment, k store.Keep) store.Environment { e.Keep = k; return e }
	for _, tc := range []struct {
		name   string
		f      lifeFacts
		expire bool
		sleep  bool
		reason string
	}{
		{"fresh", lifeFacts{History: pushed(time.Hour)}, false, false, ""},
		{"default TTL passed", lifeFacts{History: pushed(8 * 24 * time.Hour)}, true, false, "7d"},
		{"default TTL not quite", lifeFacts{History: pushed(7 * 24 * time.Hour)}, false, false, ""},
		{".slipway.yml ttl", lifeFacts{File: d(time.Hour), History: pushed(2 * time.Hour)}, true, false, "1h0m0s"},
		{"repos[].ttl over .slipway.yml", lifeFacts{Operator: d(3 * time.Hour), File: d(time.Hour), History: pushed(2 * time.Hour)}, false, false, ""},
		{"ttl 0 disables", lifeFacts{Operator: d(0), History: pushed(300 * 24 * time.Hour)}, false, false, ""},
		{"counted from creation without a push", lifeFacts{File: d(time.Hour), History: store.Environment{Created: now.Add(-2 * time.Hour)}}, true, false, ""},
		{"no times: never", lifeFacts{File: d(time.Hour)}, false, false, ""},
		{"kept forever", lifeFacts{File: d(time.Hour), History: kept(pushed(2*time.Hour), store.Keep{Forever: true})}, false, false, ""},
		{"kept until later", lifeFacts{File: d(time.Hour), History: kept(pushed(2*time.Hour), store.Keep{Until: now.Add(time.Minute)})}, false, false, ""},
		{"keep ran out", lifeFacts{File: d(time.Hour), History: kept(pushed(2*time.Hour), store.Keep{Until: now.Add(-time.Minute)})}, true, false, ""},
		{"idle past sleep_after", lifeFacts{History: pushed(time.Hour), SleepAfter: 30 * time.Minute, Ready: now.Add(-time.Hour)}, false, true, ""},
		{"a recent request keeps it awake", lifeFacts{History: pushed(time.Hour), SleepAfter: 30 * time.Minute, Ready: now.Add(-time.Hour), LastRequest: now.Add(-time.Minute)}, false, false, ""},
		{"a request before the wake counts from the wake", lifeFacts{History: pushed(time.Hour), SleepAfter: 30 * time.Minute, Ready: now.Add(-10 * time.Minute), LastRequest: now.Add(-time.Hour)}, false, false, ""},
		{"no sleep_after", lifeFacts{History: pushed(time.Hour), Ready: now.Add(-time.Hour)}, false, false, ""},
		{"expiry before sleep", lifeFacts{File: d(time.Hour), History: pushed(2 * time.Hour), SleepAfter: time.Minute, Ready: now.Add(-time.Hour)}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Now = now
			v := judgeLifetime(tc.f)
			if v.Expire != tc.expire || v.Sleep != tc.sleep {
				t.Errorf("expire %v sleep %v, want %v %v", v.Expire, v.Sleep, tc.expire, tc.sleep)
			}
			if !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("reason %q, want it to name %q", v.Reason, tc.reason)
			}
			if v.Sleep && v.Idle <= tc.f.SleepAfter {
				t.Errorf("idle %s, not over sleep_after %s", v.Idle, tc.f.SleepAfter)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h0m0s", 90 * time.Second: "1m30s"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
