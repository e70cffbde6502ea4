package launcher

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// Host is one machine of a multi-host job and how many ranks it takes.
type Host struct {
	// Name is what the launch command is given for {host} (a host name, an
	// address, an ssh alias); "localhost" and this machine's host name mean
	// this machine, where ranks start as children of the launcher.
	Name string
	// Slots is how many ranks the host takes, 1 to MaxSlots.
	Slots int
}

// Bounds on a job's hosts: slots per host, and ranks in all (the hosts' slots added up, and
// N with hosts). They keep every count the launcher derives from them within an int, and
// turn a typo like a:9223372036854775807 into an error instead of a job nobody can start.
const (
	MaxSlots = 1 << 16
	MaxRanks = 1 << 20
)

// parseSlots parses a slot count as written in a host list or file (what, for the message).
func parseSlots(what, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxSlots {
		return 0, fmt.Errorf("%q: slots must be a number from 1 to %d", what, MaxSlots)
	}
	return n, nil
}

// TotalSlots adds up the hosts' slots, checking each (1 to MaxSlots) and the total (at most
// MaxRanks).
func TotalSlots(hosts []Host) (int, error) {
	total := 0
	for _, h := range hosts {
		if h.Slots < 1 || h.Slots > MaxSlots {
			return 0, fmt.Errorf("host %s: %d slots, want 1 to %d", h.Name, h.Slots, MaxSlots)
		}
		// Both terms are at most MaxRanks, so the sum cannot overflow.
		if total += h.Slots; total > MaxRanks {
			return 0, fmt.Errorf("the hosts have more than %d slots in all", MaxRanks)
		}
	}
	return total, nil
}

func (h Host) String() string { return h.Name + ":" + strconv.Itoa(h.Slots) }

// ParseHosts parses a host list as `gorun --hosts` takes it: comma-separated
// entries NAME or NAME:SLOTS ("a:4,b:4"); a NAME alone has one slot.
func ParseHosts(list string) ([]Host, error) {
	var hosts []Host
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("host list %q: empty entry", list)
		}
		h, err := parseHostSlots(entry)
		if err != nil {
			return nil, fmt.Errorf("host list %q: %w", list, err)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// parseHostSlots parses NAME or NAME:SLOTS. A name with more than one colon
// is an IPv6 address; give it slots as [ADDR]:SLOTS.
func parseHostSlots(s string) (Host, error) {
	name, slots := s, "1"
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		name = s[1 : len(s)-1]
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1:
		var err error
		if name, slots, err = net.SplitHostPort(s); err != nil || name == "" {
			return Host{}, fmt.Errorf("%q: want NAME or NAME:SLOTS", s)
		}
	case strings.Contains(s, ":") && net.ParseIP(s) == nil:
		return Host{}, fmt.Errorf("%q: want NAME, NAME:SLOTS or [IPv6]:SLOTS", s)
	}
	if name == "" {
		return Host{}, fmt.Errorf("%q: no host name", s)
	}
	n, err := parseSlots(s, slots)
	if err != nil {
		return Host{}, err
	}
	return Host{Name: name, Slots: n}, nil
}

// ReadHostfile reads a host file as `gorun --hostfile` takes it: one host
// per line, "NAME", "NAME slots=N" (Open MPI's form, where max_slots=M is
// accepted and ignored) or "NAME:N" (Hydra's form); '#' starts a comment.
func ReadHostfile(path string) ([]Host, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host file: %w", err)
	}
	defer f.Close()
	return parseHostfile(f, path)
}

func parseHostfile(r io.Reader, name string) ([]Host, error) {
	var hosts []Host
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		h, err := parseHostSlots(fields[0])
		for _, f := range fields[1:] {
			if err != nil {
				break
			}
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "slots":
				h.Slots, err = parseSlots(f, v)
			case "max_slots":
			default:
				err = fmt.Errorf("%q: unknown (want slots=N)", f)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		hosts = append(hosts, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%s: no hosts", name)
	}
	return hosts, nil
}

// checkHosts validates Config.Hosts for a job of n ranks.
func checkHosts(hosts []Host, n int) error {
	for _, h := range hosts {
		if h.Name == "" || strings.ContainsAny(h.Name, " \t\n\x00") {
			return fmt.Errorf("host %q: not a host name", h.Name)
		}
	}
	total, err := TotalSlots(hosts)
	if err != nil {
		return err
	}
	if n > total {
		return fmt.Errorf("%d ranks but the hosts have only %d slots", n, total)
	}
	return nil
}

// slot is where one rank of the job runs.
type slot struct {
	host   string // the host's name, or "" when the job has no Config.Hosts
	node   int    // the host's index among the hosts that got ranks
	remote bool   // started through the launch command
	// local and localSize: the rank's index among its host's ranks, and
	// their number (GORUN_LOCAL_RANK, GORUN_LOCAL_SIZE). For a rank on this
	// machine, local is also its index in the local placement.
	local, localSize int
}

// layout places n ranks in blocks over hosts, in order: the first host's
// slots fill first. A host listed twice counts once, with the slots added
// up. Without hosts every rank is on this machine. isLocal says whether a
// host name means this machine; two names for it are an error, since the
// ranks would run on one machine as two nodes.
func layout(n int, hosts []Host, isLocal func(string) bool) ([]slot, error) {
	slots := make([]slot, n)
	if len(hosts) == 0 {
		for r := range slots {
			slots[r] = slot{local: r, localSize: n}
		}
		return slots, nil
	}
	var merged []Host
	index := map[string]int{}
	localName := ""
	for _, h := range hosts {
		if i, ok := index[h.Name]; ok {
			merged[i].Slots += h.Slots
			continue
		}
		if isLocal(h.Name) {
			if localName != "" {
				return nil, fmt.Errorf("hosts %s and %s are both this machine: list it once", localName, h.Name)
			}
			localName = h.Name
		}
		index[h.Name] = len(merged)
		merged = append(merged, h)
	}
	r := 0
	for node, h := range merged {
		count := min(h.Slots, n-r)
		if count == 0 {
			break
		}
		for i := range count {
			slots[r+i] = slot{host: h.Name, node: node, remote: h.Name != localName, local: i, localSize: count}
		}
		r += count
	}
	if r < n {
		return nil, fmt.Errorf("%d ranks but the hosts have only %d slots", n, r)
	}
	return slots, nil
}

// processMapping is the PMI_process_mapping value of a layout: blocks of
// consecutive nodes with the same number of ranks, "(vector,(0,2,4))" for
// two nodes of four ranks. Every node's ranks are consecutive (layout
// places in blocks), so the pattern covers the job exactly once.
func processMapping(slots []slot) string {
	var counts []int // ranks per node, by node
	for _, s := range slots {
		if s.node == len(counts) {
			counts = append(counts, 0)
		}
		counts[s.node]++
	}
	var b strings.Builder
	b.WriteString("(vector")
	for start := 0; start < len(counts); {
		end := start + 1
		for end < len(counts) && counts[end] == counts[start] {
			end++
		}
		fmt.Fprintf(&b, ",(%d,%d,%d)", start, end-start, counts[start])
		start = end
	}
	b.WriteString(")")
	return b.String()
}

// localHost returns a function that reports whether a host name means this
// machine: "localhost", a loopback address, this machine's host name, or a
// name whose first label is the host name's when one of them is unqualified
// ("node1" and "node1.cluster").
func localHost() (func(string) bool, error) {
	self, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("this machine's host name: %w", err)
	}
	return func(name string) bool { return isLocalName(name, self) }, nil
}

func isLocalName(name, self string) bool {
	name, self = strings.ToLower(strings.TrimSuffix(name, ".")), strings.ToLower(self)
	if name == "localhost" || name == self {
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		return ip.IsLoopback()
	}
	short := func(s string) string { h, _, _ := strings.Cut(s, "."); return h }
	qualified := func(s string) bool { return strings.Contains(s, ".") }
	return (!qualified(name) || !qualified(self)) && short(name) == short(self)
}

// errNoHosts is returned for launch settings given without hosts.
var errNoHosts = errors.New("LaunchCmd and PMIAddr apply only to a job with Hosts")
