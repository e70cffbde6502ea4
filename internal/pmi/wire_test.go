package pmi

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Message
	}{
		{"init", "cmd=init pmi_version=1 pmi_subversion=1\n",
			msg("init", "pmi_version", "1", "pmi_subversion", "1")},
		{"hydra response_to_init", "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n",
			msg("response_to_init", "pmi_version", "1", "pmi_subversion", "1", "rc", "0")},
		{"slurm response_to_init", "cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\n",
			msg("response_to_init", "rc", "0", "pmi_version", "1", "pmi_subversion", "1")},
		{"no newline", "cmd=barrier_out", msg("barrier_out")},
		{"cmd not first", "rc=0 cmd=barrier_out\n", msg("barrier_out", "rc", "0")},
		{"extra spaces", "  cmd=get_result   rc=0  value=x  \n", msg("get_result", "rc", "0", "value", "x")},
		{"empty value", "cmd=get_result rc=0 value=\n", msg("get_result", "rc", "0", "value", "")},
		{"value with =", "cmd=get_result value=a=b=c\n", msg("get_result", "value", "a=b=c")},
		{"mapping", "cmd=get_result rc=0 value=(vector,(0,1,4))\n",
			msg("get_result", "rc", "0", "value", "(vector,(0,1,4))")},
		{"punctuation", "cmd=put key=k value=+/,:()[]%\n", msg("put", "key", "k", "value", "+/,:()[]%")},
		{"max length", "cmd=x v=" + strings.Repeat("a", MaxLine-len("cmd=x v=\n")) + "\n",
			msg("x", "v", strings.Repeat("a", MaxLine-len("cmd=x v=\n")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLine([]byte(tc.line))
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tc.line, err)
			}
			if got.Args == nil {
				got.Args = []KV{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseLine(%q) = %#v, want %#v", tc.line, got, tc.want)
			}
		})
	}
}

func TestParseLineRejects(t *testing.T) {
	tests := []struct{ name, line string }{
		{"empty", ""},
		{"newline only", "\n"},
		{"no cmd", "rc=0 value=1\n"},
		{"empty cmd", "cmd= rc=0\n"},
		{"duplicate cmd", "cmd=a cmd=b\n"},
		{"duplicate key", "cmd=a k=1 k=2\n"},
		{"no equals", "cmd=a junk\n"},
		{"empty key", "cmd=a =v\n"},
		{"two newlines", "cmd=a\n\n"},
		{"inner newline", "cmd=a\nk=v\n"},
		{"tab", "cmd=a\tk=v\n"},
		{"carriage return", "cmd=a k=v\r\n"},
		{"backslash", "cmd=a k=v\\w\n"},
		{"nul", "cmd=a k=\x00\n"},
		{"non-ascii", "cmd=a k=\xc3\xa9\n"},
		{"del", "cmd=a k=\x7f\n"},
		{"too long", "cmd=x v=" + strings.Repeat("a", MaxLine) + "\n"},
		{"too long without newline", "cmd=x v=" + strings.Repeat("a", MaxLine-len("cmd=x v="))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseLine([]byte(tc.line))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseLine(%q) = %v, %v; want ErrMalformed", tc.line, m, err)
			}
		})
	}
}

func TestAppendLine(t *testing.T) {
	m := msg("put", "kvsname", "kvs_1", "key", "card-0", "value", "(a,b)")
	got, err := m.AppendLine([]byte("prefix:"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "prefix:cmd=put kvsname=kvs_1 key=card-0 value=(a,b)\n"; string(got) != want {
		t.Fatalf("AppendLine = %q, want %q", got, want)
	}
	maxVal := strings.Repeat("v", MaxLine-len("cmd=put value=\n"))
	if b, err := msg("put", "value", maxVal).AppendLine(nil); err != nil || len(b) != MaxLine {
		t.Fatalf("line of exactly MaxLine: %d bytes, %v", len(b), err)
	}
}

func TestAppendLineRejects(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"empty cmd", Message{}},
		{"space in cmd", msg("a b")},
		{"space in value", msg("put", "value", "a b")},
		{"newline in value", msg("put", "value", "a\nb")},
		{"backslash in value", msg("put", "value", `a\b`)},
		{"non-ascii value", msg("put", "value", "é")},
		{"empty key", msg("put", "", "v")},
		{"= in key", msg("put", "a=b", "v")},
		{"cmd as key", msg("put", "cmd", "v")},
		{"duplicate key", msg("put", "k", "1", "k", "2")},
		{"too long", msg("put", "value", strings.Repeat("v", MaxLine))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := tc.m.AppendLine(dst)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("AppendLine(%v) error = %v, want ErrMalformed", tc.m, err)
			}
			if string(got) != "keep" {
				t.Fatalf("AppendLine changed dst to %q on error", got)
			}
		})
	}
}

func TestReadMessage(t *testing.T) {
	long := "cmd=x v=" + strings.Repeat("a", MaxLine) + "\n"
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"line", "cmd=barrier_out\n", nil},
		{"clean eof", "", io.EOF},
		{"eof mid-line", "cmd=barr", io.ErrUnexpectedEOF},
		{"too long", long, errLineTooLong},
		{"bad byte", "cmd=a\x01\n", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readMessage(newLineReader(strings.NewReader(tc.in)))
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("readMessage(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
		})
	}
	// Two lines in one read are two messages.
	rd := bufio.NewReaderSize(strings.NewReader("cmd=a\ncmd=b x=1\n"), MaxLine)
	for _, want := range []string{"a", "b"} {
		m, err := readMessage(rd)
		if err != nil || m.Cmd != want {
			t.Fatalf("got %v, %v; want cmd=%s", m, err, want)
		}
	}
}

// FuzzParseLine checks that ParseLine never panics and that whatever it
// accepts encodes back to a line that parses to the same message.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"cmd=init pmi_version=1 pmi_subversion=1\n",
		"cmd=get_result rc=-1 msg=key_not_found value=unknown\n",
		"cmd=get_result rc=1\n",
		"cmd=barrier_out",
		"  rc=0  cmd=x a==b \n",
		"cmd=a k=\\\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseLine(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseLine error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc, err := m.AppendLine(nil)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode %v: %v", line, m, err)
		}
		if len(enc) > MaxLine {
			t.Fatalf("encoded %d bytes", len(enc))
		}
		m2, err := ParseLine(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip of %q: %v, %v; want %v", line, m2, err, m)
		}
	})
}
