package netaddr

import (
	"slices"
	"strings"
	"testing"
)

func TestLocalPutsLoopbackApartAndIPv4First(t *testing.T) {
	ips, loop, err := Local()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(loop, "127.0.0.1") {
		t.Errorf("loopback addresses %v lack 127.0.0.1", loop)
	}
	if slices.Contains(ips, "127.0.0.1") {
		t.Errorf("other addresses %v hold 127.0.0.1", ips)
	}
	seenV6 := false
	for _, ip := range ips {
		v6 := strings.Contains(ip, ":")
		if seenV6 && !v6 {
			t.Errorf("IPv4 %s after an IPv6 address in %v", ip, ips)
		}
		if strings.HasPrefix(ip, "fe80:") {
			t.Errorf("link-local %s listed", ip)
		}
		seenV6 = seenV6 || v6
	}
}

func TestInterface(t *testing.T) {
	ips, err := Interface("lo")
	if err != nil {
		t.Fatal(err)
	}
	if ips[0] != "127.0.0.1" {
		t.Errorf("lo's first address is %s, want 127.0.0.1", ips[0])
	}
	if _, err := Interface("no-such-if0"); err == nil || !strings.Contains(err.Error(), "GORUN_IFACE=no-such-if0") {
		t.Errorf("missing interface: err %v, want one naming GORUN_IFACE", err)
	}
}
