package topology

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestParseCPUSet(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		str     string
		wantErr bool
	}{
		{in: "", want: []int{}, str: ""},
		{in: " \n", want: []int{}, str: ""},
		{in: "0", want: []int{0}, str: "0"},
		{in: "0-3,8,10-11\n", want: []int{0, 1, 2, 3, 8, 10, 11}, str: "0-3,8,10-11"},
		{in: "3,1,2", want: []int{1, 2, 3}, str: "1-3"},
		{in: "0,2,4", want: []int{0, 2, 4}, str: "0,2,4"},
		{in: "1-1", want: []int{1}, str: "1"},
		{in: "63-65", want: []int{63, 64, 65}, str: "63-65"},
		{in: "0-1, 5", want: []int{0, 1, 5}, str: "0-1,5"},
		{in: "65535", want: []int{65535}, str: "65535"},
		{in: "5-2", wantErr: true},
		{in: "65536", wantErr: true},
		{in: "0-4000000000", wantErr: true},
		{in: "99999999999999999999999", wantErr: true},
		{in: "x", wantErr: true},
		{in: "1-", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1,,2", wantErr: true},
		{in: "1-2-3", wantErr: true},
		{in: "0x10", wantErr: true},
	}
	for _, tc := range tests {
		s, err := ParseCPUSet(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseCPUSet(%q): err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if got := s.CPUs(); !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUSet(%q).CPUs() = %v, want %v", tc.in, got, tc.want)
		}
		if got := s.String(); got != tc.str {
			t.Errorf("ParseCPUSet(%q).String() = %q, want %q", tc.in, got, tc.str)
		}
		if s.Count() != len(tc.want) || s.IsEmpty() != (len(tc.want) == 0) {
			t.Errorf("ParseCPUSet(%q): Count %d IsEmpty %v", tc.in, s.Count(), s.IsEmpty())
		}
	}
}

func TestCPUSetOps(t *testing.T) {
	a, _ := ParseCPUSet("0-3,64")
	b, _ := ParseCPUSet("2-5")
	if got := a.Union(b).String(); got != "0-5,64" {
		t.Errorf("Union = %q", got)
	}
	if got := a.Intersect(b).String(); got != "2-3" {
		t.Errorf("Intersect = %q", got)
	}
	// Intersecting away the high word must give a set Equal to one built small.
	small, _ := NewCPUSet(2, 3)
	if !a.Intersect(b).Equal(small) {
		t.Error("Intersect result not Equal to the same set built directly")
	}
	if !a.Contains(64) || a.Contains(63) || a.Contains(-1) || a.Contains(1000) {
		t.Error("Contains wrong")
	}
	if a.First() != 0 || b.First() != 2 || (CPUSet{}).First() != -1 {
		t.Error("First wrong")
	}
	if !small.IsSubsetOf(a) || a.IsSubsetOf(small) || !(CPUSet{}).IsSubsetOf(small) {
		t.Error("IsSubsetOf wrong")
	}
	if _, err := NewCPUSet(-1); err == nil {
		t.Error("NewCPUSet(-1) succeeded")
	}
	if !(CPUSet{}).Equal(a.Intersect(CPUSet{})) {
		t.Error("empty sets not Equal")
	}
}

func TestCPUSetUnix(t *testing.T) {
	s, _ := ParseCPUSet("0,5,63-64,1023")
	u, err := s.Unix()
	if err != nil {
		t.Fatal(err)
	}
	if u.Count() != 5 || !u.IsSet(1023) {
		t.Errorf("unix set has %d CPUs", u.Count())
	}
	if back := CPUSetFromUnix(&u); !back.Equal(s) {
		t.Errorf("round trip: %q, want %q", back, s)
	}
	big, _ := ParseCPUSet("1024")
	if _, err := big.Unix(); err == nil {
		t.Error("CPU 1024 fit a 1024-CPU mask")
	}
}

func TestCPUSetJSON(t *testing.T) {
	s, _ := ParseCPUSet("0-3,8")
	b, err := json.Marshal(struct{ S CPUSet }{s})
	if err != nil || string(b) != `{"S":"0-3,8"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back struct{ S CPUSet }
	if err := json.Unmarshal(b, &back); err != nil || !back.S.Equal(s) {
		t.Errorf("Unmarshal = %q, %v", back.S, err)
	}
	if err := json.Unmarshal([]byte(`{"S":"3-1"}`), &back); err == nil {
		t.Error("Unmarshal of a reversed range succeeded")
	}
}

// FuzzParseCPUSet checks that any input parses or fails cleanly, and that
// what parses survives a round trip through String.
func FuzzParseCPUSet(f *testing.F) {
	for _, s := range []string{"", "0-3,8,10-11", "65535", "5-2", "1,,2", "0-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseCPUSet(in)
		if err != nil {
			return
		}
		back, err := ParseCPUSet(s.String())
		if err != nil || !back.Equal(s) {
			t.Fatalf("%q: String %q does not parse back (%v)", in, s.String(), err)
		}
		if s.Count() != len(s.CPUs()) {
			t.Fatalf("%q: Count %d, %d CPUs", in, s.Count(), len(s.CPUs()))
		}
	})
}
