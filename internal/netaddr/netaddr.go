// Package netaddr lists this machine's usable IP addresses: what a rank advertises on its card
// and what gorun offers remote ranks for its PMI port. Both sides must agree on what counts as
// usable, so the rule lives here once.
package netaddr

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// Interface returns the usable addresses of the named interface (GORUN_IFACE), first address
// first; it fails when the interface is missing or has none.
func Interface(name string) ([]string, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("GORUN_IFACE=%s: %w", name, err)
	}
	ips := usable(ifi)
	if len(ips) == 0 {
		return nil, fmt.Errorf("GORUN_IFACE=%s has no usable address", name)
	}
	return ips, nil
}

// Local returns the usable addresses of every interface that is up: those of the other
// interfaces (IPv4 before IPv6, otherwise in the kernel's order) and, apart, the loopback ones.
func Local() (ips, loopback []string, err error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	for _, ifi := range ifs {
		switch {
		case ifi.Flags&net.FlagUp == 0:
		case ifi.Flags&net.FlagLoopback != 0:
			loopback = append(loopback, usable(&ifi)...)
		default:
			ips = append(ips, usable(&ifi)...)
		}
	}
	slices.SortStableFunc(ips, func(a, b string) int { return isV6(a) - isV6(b) })
	return ips, loopback, nil
}

// usable lists an interface's addresses, leaving out link-local ones (they need a zone).
func usable(ifi *net.Interface) []string {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLinkLocalMulticast() {
			continue
		}
		out = append(out, ipn.IP.String())
	}
	return out
}

func isV6(ip string) int {
	if strings.Contains(ip, ":") {
		return 1
	}
	return 0
}
