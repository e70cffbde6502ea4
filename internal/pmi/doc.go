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
// Only the inherited-socket variant is implemented: PMI_FD names an already
// connected socket, PMI_RANK and PMI_SIZE give rank and size (see [Connect]).
// Hydra's PMI_PORT/PMI_ID variant and the PMI-2 wire format have their place
// in client.go but are not built yet.
package pmi
