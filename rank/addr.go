package rank

import (
	"net"
	"strconv"

	"github.com/gorun-hpc/gorun/internal/netaddr"
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
		ips, err := netaddr.Interface(name)
		if err != nil {
			return "", nil, err
		}
		return net.JoinHostPort(ips[0], "0"), ips, nil
	}
	ips, loop, err := netaddr.Local()
	if err != nil {
		return "", nil, err
	}
	return ":0", append(ips, loop...), nil
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
