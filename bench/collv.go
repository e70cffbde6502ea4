package bench

import "github.com/gorun-hpc/gorun/comm"

// The v-collectives, as OSU 7's osu_gatherv, osu_scatterv, osu_allgatherv and osu_alltoallv
// measure them: every count is size bytes and block i sits at i·size (explicit displacements,
// as OSU passes them), so each is its regular counterpart through the v entry point. Root 0.

// collvBenchmarks are registered after the regular collectives (bench.go).
var collvBenchmarks = []benchmark{
	{name: "gatherv", title: "OSU MPI Gatherv Latency Test", summary: "gatherv to rank 0, equal counts of size bytes",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureGatherv},
	{name: "scatterv", title: "OSU MPI Scatterv Latency Test", summary: "scatterv from rank 0, equal counts of size bytes",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureScatterv},
	{name: "allgatherv", title: "OSU MPI Allgatherv Latency Test", summary: "allgatherv, equal counts of size bytes",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureAllgatherv},
	{name: "alltoallv", title: "OSU MPI All-to-Allv Personalized Exchange Latency Test", summary: "alltoallv, equal counts of size bytes",
		columns: collColumns, counts: collCounts, minSize: 1, maxSize: maxColl, sized: true, measure: measureAlltoallv},
}

// equalCounts are OSU's counts and displacements: size each, block i at i·size.
func equalCounts(ranks, size int) (counts, displs []int) {
	counts, displs = make([]int, ranks), make([]int, ranks)
	for i := range counts {
		counts[i], displs[i] = size, i*size
	}
	return counts, displs
}

func measureGatherv(e *env, size, iters, warmup int) ([]float64, error) {
	counts, displs := equalCounts(e.c.Size(), size)
	send := payload(size, 'a')
	var recv []byte // not used off the root
	if e.c.Rank() == 0 {
		recv = payload(size*e.c.Size(), 'b')
	}
	return timeCollective(e.c, iters, warmup, func() error { return comm.Gatherv(e.c, send, recv, counts, displs, 0) })
}

func measureScatterv(e *env, size, iters, warmup int) ([]float64, error) {
	counts, displs := equalCounts(e.c.Size(), size)
	var send []byte // not used off the root
	if e.c.Rank() == 0 {
		send = payload(size*e.c.Size(), 'a')
	}
	recv := payload(size, 'b')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Scatterv(e.c, send, counts, displs, recv, 0) })
}

func measureAllgatherv(e *env, size, iters, warmup int) ([]float64, error) {
	counts, displs := equalCounts(e.c.Size(), size)
	send, recv := payload(size, 'a'), payload(size*e.c.Size(), 'b')
	return timeCollective(e.c, iters, warmup, func() error { return comm.Allgatherv(e.c, send, recv, counts, displs) })
}

func measureAlltoallv(e *env, size, iters, warmup int) ([]float64, error) {
	counts, displs := equalCounts(e.c.Size(), size)
	send, recv := payload(size*e.c.Size(), 'a'), payload(size*e.c.Size(), 'b')
	return timeCollective(e.c, iters, warmup, func() error {
		return comm.Alltoallv(e.c, send, counts, displs, recv, counts, displs)
	})
}
