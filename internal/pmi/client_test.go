package pmi

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// exchange is one request the fake server expects and the reply it sends
// ("" for none).
type exchange struct{ req, reply string }

// fakeServer answers conn from a script of exact request lines and canned
// reply lines, as a real Hydra or Slurm would, and reports the first
// mismatch on the returned channel (nil once the script is done).
func fakeServer(conn net.Conn, script []exchange) <-chan error {
	done := make(chan error, 1)
	go func() {
		rd := bufio.NewReader(conn)
		for _, ex := range script {
			line, err := rd.ReadString('\n')
			if err != nil {
				done <- fmt.Errorf("fake server: waiting for %q: %w", ex.req, err)
				return
			}
			if line != ex.req+"\n" {
				done <- fmt.Errorf("fake server: got %q, want %q", line, ex.req)
				return
			}
			if ex.reply != "" {
				if _, err := conn.Write([]byte(ex.reply + "\n")); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	return done
}

// The reply variants of Hydra 4.0.2 and Slurm 22.05 (shared/reference/launchers.md).
var dialects = []struct {
	name                                    string
	init, maxes, kvsname, put, barrier, get string
	getMissing, finalize                    string
	kvs                                     string
}{
	{
		name:       "hydra",
		init:       "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0",
		maxes:      "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024",
		kvsname:    "cmd=my_kvsname kvsname=kvs_10279_0_651032684_vm",
		put:        "cmd=put_result rc=0 msg=success",
		barrier:    "cmd=barrier_out",
		get:        "cmd=get_result rc=0 msg=success value=(vector,(0,1,4))",
		getMissing: "cmd=get_result rc=-1 msg=key_nope_not_found value=unknown",
		finalize:   "cmd=finalize_ack",
		kvs:        "kvs_10279_0_651032684_vm",
	},
	{
		name:       "slurm",
		init:       "cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1",
		maxes:      "cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024",
		kvsname:    "cmd=my_kvsname rc=0 kvsname=5.0",
		put:        "cmd=put_result rc=0",
		barrier:    "cmd=barrier_out rc=0",
		get:        "cmd=get_result rc=0 value=(vector,(0,1,4))",
		getMissing: "cmd=get_result rc=1",
		finalize:   "cmd=finalize_ack rc=0",
		kvs:        "5.0",
	},
}

func TestClientDialects(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			rank, server := socketPair(t)
			done := fakeServer(server, []exchange{
				{"cmd=init pmi_version=1 pmi_subversion=1", d.init},
				{"cmd=get_maxes", d.maxes},
				{"cmd=get_my_kvsname", d.kvsname},
				{"cmd=put kvsname=" + d.kvs + " key=card-1 value=host:1234", d.put},
				{"cmd=barrier_in", d.barrier},
				{"cmd=get kvsname=" + d.kvs + " key=PMI_process_mapping", d.get},
				{"cmd=get kvsname=" + d.kvs + " key=nope", d.getMissing},
				{"cmd=finalize", d.finalize},
			})
			c, err := NewClient(rank, 1, 4)
			if err != nil {
				t.Fatal(err)
			}
			if c.Rank() != 1 || c.Size() != 4 || c.KVSName() != d.kvs {
				t.Fatalf("rank %d size %d kvs %q", c.Rank(), c.Size(), c.KVSName())
			}
			if err := c.Put("card-1", "host:1234"); err != nil {
				t.Fatal(err)
			}
			if err := c.Barrier(); err != nil {
				t.Fatal(err)
			}
			if v, err := c.Get("PMI_process_mapping"); err != nil || v != "(vector,(0,1,4))" {
				t.Fatalf("Get mapping = %q, %v", v, err)
			}
			if v, err := c.Get("nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get missing = %q, %v; want ErrNotFound", v, err)
			}
			if err := c.Finalize(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := c.Barrier(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Barrier after Finalize = %v, want ErrClosed", err)
			}
		})
	}
}

func TestClientAbort(t *testing.T) {
	rank, server := socketPair(t)
	done := fakeServer(server, []exchange{
		{"cmd=init pmi_version=1 pmi_subversion=1", dialects[0].init},
		{"cmd=get_maxes", dialects[0].maxes},
		{"cmd=get_my_kvsname", dialects[0].kvsname},
		{"cmd=abort exitcode=7 msg=bad_input:_x=__", ""},
	})
	c, err := NewClient(rank, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Abort(7, "bad input: x=\\\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil { // the message's forbidden bytes became '_'
		t.Fatal(err)
	}
	if err := c.Abort(7, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Abort = %v, want ErrClosed", err)
	}
}

func TestClientRejectsBadReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply string // the reply to init
	}{
		{"wrong cmd", "cmd=maxes rc=0"},
		{"rc", "cmd=response_to_init rc=-1 pmi_version=1 pmi_subversion=1"},
		{"version 2", "cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0"},
		{"malformed", "cmd=response_to_init rc=0 msg=a\\b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rank, server := socketPair(t)
			done := fakeServer(server, []exchange{{"cmd=init pmi_version=1 pmi_subversion=1", tc.reply}})
			if c, err := NewClient(rank, 0, 1); err == nil {
				t.Fatalf("NewClient accepted init reply %q: %+v", tc.reply, c)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("server hangs up", func(t *testing.T) {
		rank, server := socketPair(t)
		server.Close()
		if _, err := NewClient(rank, 0, 1); err == nil {
			t.Fatal("NewClient succeeded against a closed socket")
		}
	})
	t.Run("reply too long", func(t *testing.T) {
		rank, server := socketPair(t)
		go server.Write([]byte("cmd=response_to_init rc=0 x=" + strings.Repeat("a", 2*MaxLine) + "\n"))
		if _, err := NewClient(rank, 0, 1); !errors.Is(err, ErrMalformed) {
			t.Fatalf("NewClient = %v, want ErrMalformed", err)
		}
	})
}

func TestClientPutLimits(t *testing.T) {
	rank, server := socketPair(t)
	done := fakeServer(server, []exchange{
		{"cmd=init pmi_version=1 pmi_subversion=1", dialects[1].init},
		{"cmd=get_maxes", "cmd=maxes rc=0 kvsname_max=256 keylen_max=16 vallen_max=32"},
		{"cmd=get_my_kvsname", dialects[1].kvsname},
	})
	c, err := NewClient(rank, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{
		{strings.Repeat("k", 16), "v"}, // key over keylen_max-1
		{"k", strings.Repeat("v", 32)}, // value over vallen_max-1
		{"k", "has space"},             // forbidden byte
		{"", "v"},                      // empty key
	} {
		if err := c.Put(kv[0], kv[1]); err == nil {
			t.Errorf("Put(%q, %q) succeeded", kv[0], kv[1])
		}
	}
}

func TestConnect(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	if _, err := Connect(env(nil)); !errors.Is(err, ErrNoLauncher) {
		t.Fatalf("Connect with no PMI env = %v, want ErrNoLauncher", err)
	}
	for _, bad := range []map[string]string{
		{"PMI_PORT": "host:1", "PMI_ID": "0"},
		{"PMI_FD": "x", "PMI_RANK": "0", "PMI_SIZE": "1"},
		{"PMI_FD": "3", "PMI_SIZE": "1"},
		{"PMI_FD": "3", "PMI_RANK": "0", "PMI_SIZE": "0"},
		{"PMI_FD": "3", "PMI_RANK": "2", "PMI_SIZE": "2"},
		{"PMI_FD": "3", "PMI_RANK": "-1", "PMI_SIZE": "2"},
	} {
		if _, err := Connect(env(bad)); err == nil || errors.Is(err, ErrNoLauncher) {
			t.Errorf("Connect(%v) = %v, want a configuration error", bad, err)
		}
	}

	// The real thing: an inherited socketpair end named by PMI_FD.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	server := fileConn(t, fds[1])
	d := dialects[0]
	done := fakeServer(server, []exchange{
		{"cmd=init pmi_version=1 pmi_subversion=1", d.init},
		{"cmd=get_maxes", d.maxes},
		{"cmd=get_my_kvsname", d.kvsname},
		{"cmd=finalize", d.finalize},
	})
	c, err := Connect(env(map[string]string{"PMI_FD": strconv.Itoa(fds[0]), "PMI_RANK": "2", "PMI_SIZE": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rank() != 2 || c.Size() != 3 || c.KVSName() != d.kvs {
		t.Fatalf("rank %d size %d kvs %q", c.Rank(), c.Size(), c.KVSName())
	}
	// Connect replaced the inherited descriptor by a close-on-exec duplicate.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_GETFD, 0); errno != syscall.EBADF {
		t.Errorf("PMI_FD %d still open after Connect (errno %v)", fds[0], errno)
	}
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
