package topology

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// NodeEnv is the environment variable that overrides a process's node
// identity. Tests set different values to make several "nodes" on one
// machine; ranks with equal values share memory, others talk over sockets.
const NodeEnv = "GORUN_NODE"

// bootIDPath is the kernel's random id of the current boot: it tells two
// machines with the same host name apart (cloned VMs, containers that all
// call themselves "localhost"), and one machine before and after a reboot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// NodeID returns this process's node identity: getenv(NodeEnv) if set, else
// hostname + "/" + the kernel boot id, else whichever of the two is known,
// else "localhost". getenv is os.Getenv in production; tests pass their own
// so they stay hermetic. A launcher's node map (gorun's own, or PMI's
// process mapping, see ParseProcessMapping) takes precedence over this when
// the caller has one.
//
// Containers on one host share the boot id but usually not the host name;
// two containers with the same host name on one host would look like one
// node, which is harmless only if they share /dev/shm and the IPC namespace.
// GORUN_NODE is the way out.
func NodeID(getenv func(string) string) string {
	return nodeID(getenv, os.Hostname, bootIDPath)
}

func nodeID(getenv func(string) string, hostname func() (string, error), bootPath string) string {
	if getenv != nil {
		if v := getenv(NodeEnv); v != "" {
			return v
		}
	}
	host, err := hostname()
	if err != nil {
		host = ""
	}
	boot, _ := readText(bootPath)
	switch {
	case host != "" && boot != "":
		return host + "/" + boot
	case host != "":
		return host
	case boot != "":
		return boot
	}
	return "localhost"
}

// ErrProcessMapping is wrapped by every error ParseProcessMapping returns.
var ErrProcessMapping = errors.New("bad PMI_process_mapping")

// maxMappingInt bounds every number in a process mapping, so arithmetic on
// them cannot overflow.
const maxMappingInt = 1 << 30

// ParseProcessMapping parses the value of PMI's PMI_process_mapping key,
// which MPICH's Hydra and Slurm publish, into the node index of each of
// size ranks.
//
// The value is "(vector,(start,nodes,ranks),…)": each triple gives nodes
// consecutive node indexes from start, each holding ranks consecutive ranks.
// "(vector,(0,2,4),(2,1,3))" puts ranks 0-3 on node 0, 4-7 on node 1 and
// 8-10 on node 2. When the triples cover fewer than size ranks the whole
// pattern repeats (the cyclic form): "(vector,(0,4,1))" for 8 ranks gives
// nodes 0,1,2,3,0,1,2,3, and "(vector,(0,1,1))" puts every rank on node 0.
// Ranks the pattern covers beyond size are ignored. Spaces are allowed
// between tokens. An empty value (PMI has no mapping) is an error, so the
// caller falls back to NodeID.
func ParseProcessMapping(s string, size int) ([]int, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: size %d < 0", ErrProcessMapping, size)
	}
	blocks, err := parseMappingBlocks(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrProcessMapping, s, err)
	}
	nodes := make([]int, 0, size)
	for len(nodes) < size {
		for _, b := range blocks {
			for n := 0; n < b.nodes && len(nodes) < size; n++ {
				for r := 0; r < b.ranks && len(nodes) < size; r++ {
					nodes = append(nodes, b.start+n)
				}
			}
		}
	}
	return nodes, nil
}

type mappingBlock struct{ start, nodes, ranks int }

// parseMappingBlocks checks the whole syntax before any rank is assigned.
// Every block must cover at least one rank, or repeating the pattern would
// never finish.
func parseMappingBlocks(s string) ([]mappingBlock, error) {
	t := strings.Join(strings.Fields(s), "")
	body, ok := strings.CutPrefix(t, "(vector,")
	if !ok {
		return nil, errors.New(`want "(vector,…)"`)
	}
	body, ok = strings.CutSuffix(body, ")")
	if !ok {
		return nil, errors.New("missing closing parenthesis")
	}
	var blocks []mappingBlock
	for body != "" {
		inner, rest, ok := strings.Cut(body, ")")
		inner, ok2 := strings.CutPrefix(inner, "(")
		if !ok || !ok2 {
			return nil, fmt.Errorf("bad triple at %q", body)
		}
		f := strings.Split(inner, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("triple (%s) has %d fields, want 3", inner, len(f))
		}
		var v [3]int
		for i := range f {
			n, err := strconv.Atoi(f[i])
			if err != nil || n < 0 || n > maxMappingInt {
				return nil, fmt.Errorf("triple (%s): bad number %q", inner, f[i])
			}
			v[i] = n
		}
		if v[1] == 0 || v[2] == 0 {
			return nil, fmt.Errorf("triple (%s) covers no rank", inner)
		}
		blocks = append(blocks, mappingBlock{start: v[0], nodes: v[1], ranks: v[2]})
		if rest == "" {
			break
		}
		if body, ok = strings.CutPrefix(rest, ","); !ok || body == "" {
			return nil, fmt.Errorf("bad separator at %q", rest)
		}
	}
	if len(blocks) == 0 {
		return nil, errors.New("no triples")
	}
	return blocks, nil
}
