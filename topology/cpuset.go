package topology

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxCPUID is the largest CPU id a CPUSet accepts. It bounds the memory a
// hostile or corrupt list ("0-4000000000") can make Parse allocate; Linux's
// own NR_CPUS limit is far below it.
const MaxCPUID = 1<<16 - 1

// CPUSet is an immutable set of CPU ids. The zero value is the empty set.
// Sets compare with Equal, not ==. A CPUSet is safe for concurrent use.
//
// Text form (String, ParseCPUSet, JSON) is the kernel's list format used in
// sysfs and /proc/self/status Cpus_allowed_list: ascending, comma separated
// ids and inclusive ranges, e.g. "0-3,8,10-11"; the empty set is "".
type CPUSet struct {
	// bits holds bit i%64 of word i/64 for CPU i; it never ends in a zero
	// word, so equal sets have equal lengths. Never mutated once built.
	bits []uint64
}

// NewCPUSet returns the set of the given ids. Ids outside [0, MaxCPUID] are
// an error, not silently dropped.
func NewCPUSet(ids ...int) (CPUSet, error) {
	var b setBuilder
	for _, id := range ids {
		if err := b.add(id, id); err != nil {
			return CPUSet{}, err
		}
	}
	return b.set(), nil
}

// cpuRange returns the set {lo..hi}; callers pass valid ids.
func cpuRange(lo, hi int) CPUSet {
	var b setBuilder
	if err := b.add(lo, hi); err != nil {
		return CPUSet{}
	}
	return b.set()
}

// ParseCPUSet parses the kernel list format ("0-3,8,10-11"). Surrounding
// white space and a trailing newline, as sysfs files have, are accepted; an
// empty or blank string is the empty set. Ranges must not be reversed.
func ParseCPUSet(s string) (CPUSet, error) {
	s = strings.TrimSpace(s)
	var b setBuilder
	if s == "" {
		return CPUSet{}, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := parseID(lo)
		if err != nil {
			return CPUSet{}, fmt.Errorf("cpu list %q: %w", s, err)
		}
		z := a
		if isRange {
			if z, err = parseID(hi); err != nil {
				return CPUSet{}, fmt.Errorf("cpu list %q: %w", s, err)
			}
		}
		if z < a {
			return CPUSet{}, fmt.Errorf("cpu list %q: reversed range %d-%d", s, a, z)
		}
		if err := b.add(a, z); err != nil {
			return CPUSet{}, fmt.Errorf("cpu list %q: %w", s, err)
		}
	}
	return b.set(), nil
}

func parseID(s string) (int, error) {
	// Only plain decimal digits: Atoi would also take "+1" or "-0".
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad cpu id %q", s)
	}
	id, err := strconv.Atoi(s)
	if err != nil || id > MaxCPUID {
		return 0, fmt.Errorf("cpu id %q out of range [0, %d]", s, MaxCPUID)
	}
	return id, nil
}

// CPUSetFromUnix converts the affinity mask that unix.SchedGetaffinity fills.
func CPUSetFromUnix(u *unix.CPUSet) CPUSet {
	var b setBuilder
	for i := range len(u) * 64 {
		if u.IsSet(i) {
			_ = b.add(i, i) // i < 1024 <= MaxCPUID
		}
	}
	return b.set()
}

// Unix converts s to the fixed-size mask that unix.SchedSetaffinity takes.
// It fails if s holds an id that mask cannot represent (1024 and above).
func (s CPUSet) Unix() (unix.CPUSet, error) {
	var u unix.CPUSet
	limit := len(u) * 64
	for _, id := range s.CPUs() {
		if id >= limit {
			return unix.CPUSet{}, fmt.Errorf("cpu %d does not fit an affinity mask of %d CPUs", id, limit)
		}
		u.Set(id)
	}
	return u, nil
}

// Contains reports whether cpu is in s.
func (s CPUSet) Contains(cpu int) bool {
	if cpu < 0 || cpu/64 >= len(s.bits) {
		return false
	}
	return s.bits[cpu/64]&(1<<(cpu%64)) != 0
}

// Count returns the number of CPUs in s.
func (s CPUSet) Count() int {
	n := 0
	for _, w := range s.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether s has no CPUs.
func (s CPUSet) IsEmpty() bool { return len(s.bits) == 0 }

// CPUs returns the ids in s in ascending order (a new slice each call).
func (s CPUSet) CPUs() []int {
	out := make([]int, 0, s.Count())
	for i, w := range s.bits {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// First returns the lowest id in s, or -1 if s is empty.
func (s CPUSet) First() int {
	for i, w := range s.bits {
		if w != 0 {
			return i*64 + bits.TrailingZeros64(w)
		}
	}
	return -1
}

// Equal reports whether s and t hold the same CPUs.
func (s CPUSet) Equal(t CPUSet) bool {
	if len(s.bits) != len(t.bits) {
		return false
	}
	for i := range s.bits {
		if s.bits[i] != t.bits[i] {
			return false
		}
	}
	return true
}

// IsSubsetOf reports whether every CPU of s is in t.
func (s CPUSet) IsSubsetOf(t CPUSet) bool {
	for i, w := range s.bits {
		if i >= len(t.bits) || w&^t.bits[i] != 0 {
			return false
		}
	}
	return true
}

// Union returns s ∪ t.
func (s CPUSet) Union(t CPUSet) CPUSet {
	long, short := s.bits, t.bits
	if len(short) > len(long) {
		long, short = short, long
	}
	out := append([]uint64(nil), long...)
	for i, w := range short {
		out[i] |= w
	}
	return CPUSet{bits: trim(out)}
}

// Intersect returns s ∩ t.
func (s CPUSet) Intersect(t CPUSet) CPUSet {
	n := min(len(s.bits), len(t.bits))
	out := make([]uint64, n)
	for i := range n {
		out[i] = s.bits[i] & t.bits[i]
	}
	return CPUSet{bits: trim(out)}
}

// String returns s in list form, e.g. "0-3,8,10-11"; "" for the empty set.
func (s CPUSet) String() string {
	var sb strings.Builder
	ids := s.CPUs()
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return sb.String()
}

// MarshalText encodes s in list form, so JSON shows "0-3,8".
func (s CPUSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes the list form.
func (s *CPUSet) UnmarshalText(b []byte) error {
	t, err := ParseCPUSet(string(b))
	if err != nil {
		return err
	}
	*s = t
	return nil
}

// setBuilder accumulates ids; its zero value is ready to use.
type setBuilder struct{ bits []uint64 }

func (b *setBuilder) add(lo, hi int) error {
	if lo < 0 || hi > MaxCPUID || lo > hi {
		return fmt.Errorf("cpu range %d-%d out of range [0, %d]", lo, hi, MaxCPUID)
	}
	if need := hi/64 + 1; need > len(b.bits) {
		b.bits = append(b.bits, make([]uint64, need-len(b.bits))...)
	}
	for i := lo; i <= hi; i++ {
		b.bits[i/64] |= 1 << (i % 64)
	}
	return nil
}

func (b *setBuilder) set() CPUSet { return CPUSet{bits: trim(b.bits)} }

// trim drops trailing zero words so that Equal can compare lengths.
func trim(w []uint64) []uint64 {
	for len(w) > 0 && w[len(w)-1] == 0 {
		w = w[:len(w)-1]
	}
	if len(w) == 0 {
		return nil
	}
	return w
}
