package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
)

type fakeNetworks struct {
	nets  []network.Summary
	err   error
	calls int
}

func (f *fakeNetworks) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	f.calls++
	return f.nets, f.err
}

func summary(subnets ...string) network.Summary {
	var s network.Summary
	for _, sn := range subnets {
		s.IPAM.Config = append(s.IPAM.Config, network.IPAMConfig{Subnet: sn})
	}
	return s
}

func TestPreviewGuard(t *testing.T) {
	nets := &fakeNetworks{nets: []network.Summary{summary("172.20.0.0/16"), summary("fd00:1::/64", "bogus")}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := newPreviewGuard(ctx, nets, slog.New(slog.DiscardHandler), time.Hour)
	ok := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	tests := []struct {
		remote string
		want   int
	}{
		{"172.20.3.4:5555", 403},
		{"[fd00:1::9]:80", 403},
		{"[::ffff:172.20.0.7]:1", 403},
		{"172.21.0.1:5555", 204},
		{"127.0.0.1:1234", 204},
		{"203.0.113.9:443", 204},
		{"not-an-address", 204},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/webhooks/github", nil)
		r.RemoteAddr = tt.remote
		w := httptest.NewRecorder()
		ok.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("from %s: %d, want %d", tt.remote, w.Code, tt.want)
		}
	}
	if nets.calls != 1 {
		t.Errorf("listed networks %d times, want once (requests read a snapshot)", nets.calls)
	}
	// A failing engine keeps the last known subnets.
	nets.err = errors.New("engine down")
	g.refresh(ctx)
	if !g.fromPreview("172.20.0.2:1") {
		t.Error("lost the known subnets when the engine failed")
	}
}
