#!/bin/sh
# Start a private Slurm (munged, slurmctld, slurmd; no systemd) on this machine, run a gorun
# program under srun, and stop the daemons again.
#
#   test/slurm/run.sh PROG      PROG: the comm e2e test program (comm/testdata/e2e), built
#
# Runs PROG p2p and PROG coll with
#   srun --mpi=pmi2 -O -n 4    ranks join through Slurm's PMI (PMI_FD)
#   srun --mpi=none -O -n 4    plain srun: no PMI; ranks meet at gorun's own rendezvous on the
#                              step's reserved port (SLURM_STEP_RESV_PORTS, from MpiParams=ports)
# (slurm.conf says MpiDefault=pmi2, so a bare `srun` is the first kind.)
#
# Everything lives in one private directory, $TMPDIR/gorun-slurm.XXXXXX (config, keys, sockets,
# state, logs, pid files), the daemons listen on non-default ports, and a trap stops them by the
# pids in their pid files however the script ends, short of SIGKILL (the Go test that runs it,
# comm/slurm_test.go, then stops them from the pid files itself). Exit status 77 with a
# "SKIP: reason" line: this machine cannot host Slurm.
set -eu

skip() { echo "SKIP: $*"; exit 77; }

[ $# -eq 1 ] || { echo "usage: $0 PROG" >&2; exit 2; }
prog=$1
[ -x "$prog" ] || { echo "$prog: not an executable" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || skip "a private Slurm needs root (slurmd runs jobs as their user)"
for cmd in munged slurmctld slurmd srun sinfo; do
	command -v "$cmd" >/dev/null 2>&1 ||
		skip "$cmd is not installed (apt-get install slurmctld slurmd slurm-client munge)"
done
# slurmd 22.05 initialises its cgroup plugin even with proctrack/linuxproc and task/none.
if ! [ -d /sys/fs/cgroup ] || [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
	skip "no cgroup filesystem at /sys/fs/cgroup: slurmd cannot start"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/gorun-slurm.XXXXXX")
chmod 0755 "$dir" # munged insists that its socket's directory is not group- or world-writable

# alive PID: the process exists and is not a zombie (the daemons are reparented to init,
# which reaps them when it gets round to it).
alive() {
	[ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

stop() {
	status=$?
	# Stop everything even if printing fails: stdout may be a closed pipe.
	set +e
	trap - EXIT HUP INT TERM
	trap '' PIPE
	for d in slurmd slurmctld munged; do
		[ -s "$dir/$d.pid" ] || continue
		pid=$(cat "$dir/$d.pid")
		kill "$pid" 2>/dev/null || continue
		i=0
		while alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		alive "$pid" && kill -9 "$pid" 2>/dev/null
	done
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		for log in "$dir"/*.log; do
			[ -f "$log" ] && { echo "--- $log (last lines)"; tail -n 20 "$log"; }
		done
	fi
	rm -rf "$dir"
	exit "$status"
}
trap stop EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# Ports: a random block well away from Slurm's defaults (6817, 6818) and the ephemeral range.
base=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 9000 ))
ctld_port=$base
slurmd_port=$((base + 1))
resv_ports="$((base + 10))-$((base + 99))"
node=$(hostname -s)
cpus=$(nproc)

mkdir -p "$dir/state" "$dir/spool/$node"
dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 2>/dev/null
chmod 0400 "$dir/munge.key"
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" \
	--pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge.seed"

cat >"$dir/slurm.conf" <<CONF
ClusterName=gorun-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
MpiDefault=pmi2
MpiParams=ports=$resv_ports
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=10 State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$dir/slurm.conf"
export GORUN_COOKIE_FILE="$dir/cookie" # plain srun: gorun's own rendezvous over TCP proves this secret

slurmctld -c -i
slurmd
state=
for _ in $(seq 100); do
	state=$(sinfo -h -o %t 2>/dev/null || true)
	[ "$state" = idle ] && break
	sleep 0.1
done
if [ "$state" != idle ]; then
	if why=$(grep -i -m1 'cgroup' "$dir/slurmd.log" 2>/dev/null) && grep -qi 'error' "$dir/slurmd.log"; then
		skip "slurmd cannot use the cgroup filesystem here: $why"
	fi
	echo "FAIL: Slurm did not come up (node state: '$state')"
	exit 1
fi
echo "private Slurm up: node $node, $cpus CPUs, ports $ctld_port/$slurmd_port, step ports $resv_ports"

fail=0
run() {
	echo "--- srun $*"
	start=$(date +%s%N)
	if out=$(timeout 120 srun "$@" 2>&1); then rc=0; else rc=$?; fi
	echo "$out"
	echo "exit $rc after $((($(date +%s%N) - start) / 1000000)) ms"
	mode=$(eval "echo \${$#}")
	if [ "$rc" -ne 0 ] || ! echo "$out" | grep -q "e2e $mode ok on 4 ranks"; then
		echo "FAIL: srun $*"
		fail=1
	fi
}

# Plain srun must give the step its reserved ports, or ranks on several nodes could not meet.
ports=$(srun --mpi=none -n 1 printenv SLURM_STEP_RESV_PORTS || true)
[ -n "$ports" ] || { echo "FAIL: plain srun got no SLURM_STEP_RESV_PORTS"; exit 1; }
echo "plain srun: SLURM_STEP_RESV_PORTS=$ports"

for mode in p2p coll; do
	run --mpi=pmi2 -O -n 4 "$prog" "$mode"
	run --mpi=none -O -n 4 "$prog" "$mode"
done
[ $fail -eq 0 ] || exit 1
echo "PASS: gorun ranks ran under srun --mpi=pmi2 and plain srun"
