package rank

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/topology"
)

// card is what each rank tells the others at start-up, through the launcher's key-value store.
// Its text form is one PMI value: no spaces, no backslashes, well under 1024 bytes:
//
//	2,<pid>,<node id, base64url>,<allowed CPUs, "+" for ",">,<usable CPUs>,<tcp port>/<ip>/<ip>...,<unix address>
type card struct {
	pid     int
	node    string          // node identity: ranks with equal node ids share a machine
	cpus    topology.CPUSet // the CPUs the rank may run on
	usable  int             // how many CPUs it may keep busy (cgroup quota included)
	tcpPort int             // the rank's TCP listener's port
	tcpIPs  []string        // the addresses it listens on, best first
	unix    string          // the rank's Unix-socket listener ("@name": abstract)

	nodeIndex int // derived: index of node among the job's nodes, in order of first rank
}

const cardVersion = "2"

func (c card) String() string {
	return strings.Join([]string{
		cardVersion,
		strconv.Itoa(c.pid),
		base64.RawURLEncoding.EncodeToString([]byte(c.node)),
		strings.ReplaceAll(c.cpus.String(), ",", "+"),
		strconv.Itoa(c.usable),
		strings.Join(append([]string{strconv.Itoa(c.tcpPort)}, c.tcpIPs...), "/"),
		c.unix,
	}, ",")
}

// parseCard decodes a card another rank published; nothing in it is trusted until checked.
func parseCard(s string) (card, error) {
	f := strings.Split(s, ",")
	if len(f) != 7 {
		return card{}, fmt.Errorf("card %q: %d fields, want 7", s, len(f))
	}
	if f[0] != cardVersion {
		return card{}, fmt.Errorf("card version %q, want %s (mixed gorun versions in one job?)", f[0], cardVersion)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return card{}, fmt.Errorf("card pid %q", f[1])
	}
	node, err := base64.RawURLEncoding.DecodeString(f[2])
	if err != nil || len(node) == 0 {
		return card{}, fmt.Errorf("card node id %q", f[2])
	}
	cpus, err := topology.ParseCPUSet(strings.ReplaceAll(f[3], "+", ","))
	if err != nil {
		return card{}, fmt.Errorf("card cpus %q: %w", f[3], err)
	}
	usable, err := strconv.Atoi(f[4])
	if err != nil || usable <= 0 {
		return card{}, fmt.Errorf("card usable cpus %q", f[4])
	}
	tcp := strings.Split(f[5], "/")
	port, err := strconv.Atoi(tcp[0])
	if err != nil || port < 0 || port > 65535 {
		return card{}, fmt.Errorf("card tcp port %q", tcp[0])
	}
	for _, ip := range tcp[1:] {
		if net.ParseIP(ip) == nil {
			return card{}, fmt.Errorf("card address %q", ip)
		}
	}
	if strings.ContainsAny(f[6], " \t\n\\") {
		return card{}, fmt.Errorf("card address %q", f[6])
	}
	return card{pid: pid, node: string(node), cpus: cpus, usable: usable, tcpPort: port, tcpIPs: tcp[1:], unix: f[6]}, nil
}
