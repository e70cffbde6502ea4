package rank

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorun-hpc/gorun/internal/pmi"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func slurmEnv(kv ...string) map[string]string {
	m := map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "5", "SLURM_STEP_ID": "0",
		"SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_NODELIST": "n[07-08]"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestFindRendezvous(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		env                   map[string]string
		network, addr, listen string
	}{
		{"reserved ports", slurmEnv("SLURM_STEP_RESV_PORTS", "12000-12003"), "tcp", "n07:12000", ":12000"},
		{"port list", slurmEnv("SLURM_STEP_RESV_PORTS", "12005,12000-12001"), "tcp", "n07:12005", ":12005"},
		{"explicit address is the one bound", slurmEnv("GORUN_RENDEZVOUS", "10.1.2.3:4000", "SLURM_STEP_RESV_PORTS", ","), "tcp", "10.1.2.3:4000", "10.1.2.3:4000"},
		{"one node", slurmEnv("SLURM_STEP_NUM_NODES", "1"), "unix", "@gorun-rdv-slurm-5.0", "@gorun-rdv-slurm-5.0"},
		{"open mpi", map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
			"OMPI_MCA_ess_base_jobid": "77"}, "unix", "@gorun-rdv-ompi-77", "@gorun-rdv-ompi-77"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := findRendezvous(envMap(tc.env))
			if err != nil || s.network != tc.network || s.addr != tc.addr || s.listen != tc.listen {
				t.Errorf("got %s %s listening on %s, %v; want %s %s on %s", s.network, s.addr, s.listen, err, tc.network, tc.addr, tc.listen)
			}
		})
	}
}

// Malformed values are errors that name the variable, never a panic.
func TestFindRendezvousRejects(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{slurmEnv("SLURM_STEP_RESV_PORTS", ","), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "-"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "12000-"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "12003-12000"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "0"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "65536"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "12000,x"), "SLURM_STEP_RESV_PORTS"},
		{slurmEnv("SLURM_STEP_RESV_PORTS", "12000", "SLURM_STEP_NODELIST", ""), "SLURM_STEP_NODELIST"},
		{slurmEnv("GORUN_RENDEZVOUS", "host"), "GORUN_RENDEZVOUS"},
		{slurmEnv("GORUN_RENDEZVOUS", "host:0"), "GORUN_RENDEZVOUS"},
		{slurmEnv("GORUN_RENDEZVOUS", "host:70000"), "GORUN_RENDEZVOUS"},
		{slurmEnv("GORUN_RENDEZVOUS", "host:http"), "GORUN_RENDEZVOUS"},
		{slurmEnv(), "GORUN_RENDEZVOUS=host:port"},
	} {
		_, err := findRendezvous(envMap(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
}

// rendezvousJob runs joinJobKey for every rank of a job in this process, each with its own
// environment, and returns the keys they got; it finalizes every rank and stops rank 0's
// server.
func rendezvousJob(t *testing.T, envs []map[string]string, keys [][]byte) ([][]byte, []error) {
	t.Helper()
	n := len(envs)
	got, errs := make([][]byte, n), make([]error, n)
	clients := make([]*pmi.Client, n)
	var srv *rendezvous
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			c, rdv, key, err := joinJobKey(envMap(envs[r]), keys[r], 10*time.Second)
			got[r], errs[r], clients[r] = key, err, c
			if rdv != nil {
				srv = rdv
			}
		})
	}
	wg.Wait()
	for _, c := range clients {
		if c != nil {
			c.Finalize()
		}
	}
	if srv != nil {
		linger := 10 * time.Second
		if errors.Join(errs...) != nil {
			linger = 0 // a rank that failed never finalizes
		}
		srv.close(linger)
	}
	return got, errs
}

func ompiEnvs(n int, kv ...string) []map[string]string {
	var job [6]byte
	rand.Read(job[:])
	envs := make([]map[string]string, n)
	for r := range envs {
		envs[r] = map[string]string{"OMPI_COMM_WORLD_RANK": strconv.Itoa(r), "OMPI_COMM_WORLD_SIZE": strconv.Itoa(n),
			"OMPI_COMM_WORLD_LOCAL_SIZE": strconv.Itoa(n), "OMPI_MCA_ess_base_jobid": hex.EncodeToString(job[:])}
		for i := 0; i+1 < len(kv); i += 2 {
			envs[r][kv[i]] = kv[i+1]
		}
	}
	return envs
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func checkSameKey(t *testing.T, keys [][]byte, errs []error) {
	t.Helper()
	for r := range keys {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if len(keys[r]) < 16 || !bytes.Equal(keys[r], keys[0]) {
			t.Errorf("rank %d got key %x, rank 0 %x", r, keys[r], keys[0])
		}
	}
}

// On one node ranks meet on the abstract socket and get rank 0's key over it.
func TestRendezvousUnix(t *testing.T) {
	keys, errs := rendezvousJob(t, ompiEnvs(3), make([][]byte, 3))
	checkSameKey(t, keys, errs)
}

// Over TCP ranks prove the user's cookie; the key is derived, not the cookie itself.
func TestRendezvousTCPCookie(t *testing.T) {
	cookie := filepath.Join(t.TempDir(), "cookie")
	envs := ompiEnvs(3, "GORUN_RENDEZVOUS", freePort(t), "GORUN_COOKIE_FILE", cookie)
	keys, errs := rendezvousJob(t, envs, make([][]byte, 3))
	checkSameKey(t, keys, errs)
	secret, err := os.ReadFile(cookie)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(secret, []byte(hex.EncodeToString(keys[0]))) {
		t.Error("the job key is the cookie")
	}
}

// A GORUN_JOB_KEY every rank holds serves as the secret; a rank with another is refused.
func TestRendezvousTCPJobKey(t *testing.T) {
	k := bytes.Repeat([]byte{1}, 32)
	envs := ompiEnvs(2, "GORUN_RENDEZVOUS", freePort(t), "GORUN_COOKIE_FILE", "/nonexistent/cookie")
	keys, errs := rendezvousJob(t, envs, [][]byte{k, k})
	checkSameKey(t, keys, errs)
	if bytes.Equal(keys[0], k) {
		t.Error("the job key is GORUN_JOB_KEY itself")
	}

	envs = ompiEnvs(2, "GORUN_RENDEZVOUS", freePort(t), "GORUN_COOKIE_FILE", "/nonexistent/cookie")
	_, errs = rendezvousJob(t, envs, [][]byte{k, bytes.Repeat([]byte{2}, 32)})
	if errs[1] == nil || !errors.Is(errs[1], pmi.ErrUnauthenticated) && !strings.Contains(errs[1].Error(), "secret") {
		t.Errorf("a rank with another secret: %v", errs[1])
	}
}

// Ranks whose cookies differ (nodes without a shared home) are told why they fail.
func TestRendezvousTCPCookieMismatch(t *testing.T) {
	addr := freePort(t)
	envs := ompiEnvs(2, "GORUN_RENDEZVOUS", addr)
	envs[0]["GORUN_COOKIE_FILE"] = filepath.Join(t.TempDir(), "cookie")
	envs[1]["GORUN_COOKIE_FILE"] = filepath.Join(t.TempDir(), "cookie")
	_, errs := rendezvousJob(t, envs, make([][]byte, 2))
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "cookie file on every node") {
		t.Errorf("rank 1 with another cookie: %v", errs[1])
	}
}

// A stranger that speaks to the rendezvous before the other ranks join learns nothing,
// claims no rank and cannot abort: the job still forms.
func TestRendezvousStranger(t *testing.T) {
	addr := freePort(t)
	envs := ompiEnvs(2, "GORUN_RENDEZVOUS", addr, "GORUN_COOKIE_FILE", filepath.Join(t.TempDir(), "cookie"))
	c0, srv, key0, err := joinJobKey(envMap(envs[0]), nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close(0)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("cmd=initack pmiid=1\ncmd=init pmi_version=1 pmi_subversion=1\ncmd=get kvsname=x key=gorun-job-key\ncmd=abort exitcode=3\n"))
	var b bytes.Buffer
	b.ReadFrom(c)
	c.Close()
	if b.Len() != 0 {
		t.Errorf("the stranger got %q", b.String())
	}
	c1, _, key1, err := joinJobKey(envMap(envs[1]), nil, 10*time.Second)
	if err != nil {
		t.Fatalf("rank 1 after the stranger: %v", err)
	}
	if !bytes.Equal(key0, key1) {
		t.Errorf("keys %x and %x differ", key0, key1)
	}
	var wg sync.WaitGroup
	for _, c := range []*pmi.Client{c1, c0} {
		wg.Go(func() {
			if err := c.Barrier(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c0.Finalize()
	c1.Finalize()
}
