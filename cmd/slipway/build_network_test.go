package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
)

// someFirewall stands for a working firewall.
type someFirewall struct{}

func (someFirewall) Isolate(context.Context, string, string) error { return nil }
func (someFirewall) Release(context.Context, string) error         { return nil }

// build_network maps onto the engine's modes, and the operator hears when
// builds get no network or an unfirewalled one.
func TestBuildNetworkFor(t *testing.T) {
	tests := []struct {
		mode     string
		fw       stack.Firewall
		want     string
		warnings string
	}{
		{config.BuildNetworkAuto, someFirewall{}, stack.BuildNetworkAuto, ""},
		{config.BuildNetworkAuto, nil, stack.BuildNetworkAuto, "builds run without a network"},
		{config.BuildNetworkBridge, nil, stack.BuildNetworkBridge, "without Slipway's firewall"},
		{config.BuildNetworkBridge, someFirewall{}, stack.BuildNetworkBridge, ""},
		{config.BuildNetworkNone, nil, stack.BuildNetworkNone, ""},
		{"", nil, stack.BuildNetworkAuto, "builds run without a network"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, nil))
		if got := buildNetworkFor(tt.mode, tt.fw, log); got != tt.want {
			t.Errorf("buildNetworkFor(%q, %v) = %q, want %q", tt.mode, tt.fw, got, tt.want)
		}
		if tt.warnings == "" && out.Len() > 0 || !strings.Contains(out.String(), tt.warnings) {
			t.Errorf("buildNetworkFor(%q, %v) logged %q, want %q", tt.mode, tt.fw, out.String(), tt.warnings)
		}
	}
}
