package rank

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Where a rank listens for TCP and which addresses it tells its peers. With GORUN_IFACE set,
// only that interface: its addresses are advertised and the listener is bound to the first.
// Otherwise the listener takes every interface and the card lists every address of every
// interface that is up (IPv4 before IPv6, loopback last): a peer on another node tries them
// in turn and keeps the first that reaches this rank and passes the handshake, so the
// interface that reaches the peers is the one used, whatever the network looks like.

// tcpListen returns the address to listen on and the addresses to advertise (without the
// port).
func tcpListen(getenv func(string) string) (string, []string, error) {
	if name := getenv("GORUN_IFACE"); name != "" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return "", nil, fmt.Errorf("GORUN_IFACE=%s: %w", name, err)
		}
		ips := interfaceIPs(ifi)
		if len(ips) == 0 {
			return "", nil, fmt.Errorf("GORUN_IFACE=%s has no address", name)
		}
		return net.JoinHostPort(ips[0], "0"), ips, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", nil, err
	}
	var ips, loop []string
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		if ifi.Flags&net.FlagLoopback != 0 {
			loop = append(loop, interfaceIPs(&ifi)...)
			continue
		}
		ips = append(ips, interfaceIPs(&ifi)...)
	}
	slices.SortStableFunc(ips, func(a, b string) int { return v6(a) - v6(b) })
	return ":0", append(ips, loop...), nil
}

// interfaceIPs lists the usable addresses of an interface (link-local IPv6 needs a zone and is
// left out).
func interfaceIPs(ifi *net.Interface) []string {
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

func v6(ip string) int {
	if strings.Contains(ip, ":") {
		return 1
	}
	return 0
}

// dialAddrs is where to reach a peer that listens on port at ips: over loopback if it shares
// this node, else at each of its other addresses in its order.
func dialAddrs(port int, ips []string, local bool) []string {
	p := strconv.Itoa(port)
	var out, loop []string
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, p)
		if parsed := net.ParseIP(ip); parsed != nil && parsed.IsLoopback() {
			loop = append(loop, addr)
			continue
		}
		out = append(out, addr)
	}
	if local {
		return append(loop, out...)
	}
	return out
}
