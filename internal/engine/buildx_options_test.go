package engine_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/slimbuild/slimbuild/internal/engine"
	"github.com/slimbuild/slimbuild/internal/runtime"
)

// TestOptionsCheckBuildx: the options behind buildx's flags are checked by the
// engine too, for callers other than the CLI: a host name cannot add lines to
// RUN's /etc/hosts, an entitlement must be known.
func TestOptionsCheckBuildx(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name string
		opts engine.Options
		want string
	}{
		{"host name with a newline", engine.Options{ExtraHosts: []runtime.Host{{Name: "a\n6.6.6.6 evil", IP: ip}}}, "extra host"},
		{"host name with a blank", engine.Options{ExtraHosts: []runtime.Host{{Name: "a b", IP: ip}}}, "extra host"},
		{"host without IP", engine.Options{ExtraHosts: []runtime.Host{{Name: "a"}}}, "extra host"},
		{"unknown entitlement", engine.Options{Allow: []engine.Entitlement{"device"}}, `unknown entitlement "device"`},
		{"pull and no pull", engine.Options{Pull: true, NoPull: true}, "exclude each other"},
		{"negative shm", engine.Options{ShmSize: -1}, "shm size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	ok := engine.Options{ExtraHosts: []runtime.Host{{Name: "registry.internal", IP: ip}}, Allow: []engine.Entitlement{engine.EntitlementNetworkHost, engine.EntitlementSecurityInsecure}, Pull: true, ShmSize: 1 << 20}
	if err := ok.Check(); err != nil {
		t.Errorf("Check of valid options: %v", err)
	}
}
