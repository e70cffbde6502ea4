// Package pmi speaks the PMI-1 wire protocol, both ends: the rank's
// [Client] and the launcher's [Server].
//
// PMI-1 is the bootstrap protocol MPICH's Hydra (mpiexec) and Slurm's pmi2
// plugin (srun --mpi=pmi2) serve to the processes they start, so a rank built
// on this package joins a job the same way whether gorun, Hydra or Slurm
// started it.
//
// # Wire format
//
// One ASCII line per request and per reply:
//
//	cmd=NAME key=value key=value\n
//
// Fields are separated by spaces and are parsed by key, never by position
// (Hydra and Slurm order the keys of a reply differently). Keys and values
// are printable ASCII without spaces, newlines or backslashes: neither Hydra
// nor Slurm escapes anything. A line is at most [MaxLine] bytes including the
// newline, and every request goes out in one write(): Slurm reads a request
// with a single read(fd, buf, 1024).
//
// A request is answered by exactly one reply, except abort, which has none.
//
//	request                                   reply
//	cmd=init pmi_version=1 pmi_subversion=1   cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1
//	cmd=get_maxes                             cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024
//	cmd=get_appnum                            cmd=appnum rc=0 appnum=0
//	cmd=get_universe_size                     cmd=universe_size rc=0 size=N
//	cmd=get_my_kvsname                        cmd=my_kvsname rc=0 kvsname=K
//	cmd=put kvsname=K key=k value=v           cmd=put_result rc=0 msg=success
//	cmd=barrier_in                            cmd=barrier_out rc=0
//	cmd=get kvsname=K key=k                   cmd=get_result rc=0 msg=success value=v
//	cmd=finalize                              cmd=finalize_ack rc=0
//	cmd=abort exitcode=N                      (none)
//
// Puts become visible to gets after the next barrier.
//
// # How a rank reaches its server
//
// Three ways, all served by [Server]:
//
//   - PMI_FD names an already connected socket, inherited from the launcher
//     (gorun, Hydra, srun --mpi=pmi2); PMI_RANK and PMI_SIZE give rank and
//     size ([Connect], [Server.ServeConn]).
//   - PMI_PORT=host:port with PMI_ID=<rank> (Hydra's -pmi-port, gorun's ranks
//     on other hosts): the rank dials the port and opens with an initack
//     exchange (port.go, [DialPort], [Server.ServePort]); a rank of gorun
//     proves with [PortToken] that it holds the job key.
//   - gorun's own rendezvous, for launchers with no key-value service (Open
//     MPI's mpirun, plain srun): rank 0 serves the others over an abstract
//     Unix socket or TCP, and the opening authenticates both ends ([Auth],
//     [JoinAuth]; auth.go).
//
// Connections to a port are refused unless they authenticate: at most 64
// openings at a time, each within a few seconds; only a connection that
// claimed a rank can put, get, finalize or abort.
//
// The PMI-2 wire format is not built: its place is marked in client.go.
package pmi
