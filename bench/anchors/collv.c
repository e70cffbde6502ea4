/* collv.c - OSU-style latency of gather, scatter, reduce_scatter and the v-collectives
 * (gatherv, scatterv, allgatherv, alltoallv), the method of ../shared/anchors/coll.c
 * (osu_gather and the others, OSU 7 layout, root 0):
 *   gather          every rank sends size bytes (MPI_CHAR); the root receives np*size
 *   scatter         the root sends size bytes to each rank
 *   reduce_scatter  size bytes in all: size/4 floats, MPI_SUM; recvcounts as osu_reduce_scatter
 *                   (size/4/np each, the first (size/4)%np ranks one more; while size/4 < np,
 *                   one each for the first size/4 ranks)
 *   gatherv, scatterv, allgatherv, alltoallv: counts all size, displacements i*size
 * usage: collv OP [SIZE...]   sizes in bytes (default 8..1 MiB, powers of 2; reduce_scatter
 *                             skips sizes under 4)
 * Per iteration t=Wtime; op; acc+=Wtime-t; MPI_Barrier. small (<=8KB): 100 warmup + 1000
 * timed; large: 10 + 100 (OSU's defaults; COLL_ITERS / COLL_SKIP override the small counts,
 * and the large ones scale with them as gorun-bench -i/-x do). Per-rank average, then
 * avg/min/max over ranks; "avg" is the OSU number.
 * Time cap (oversubscribed runs), as coll.c: 5 calibration ops are timed first and the timed
 * count is lowered (never below 20) so a size costs about COLL_BUDGET_S seconds (default 1.0).
 * The count used is printed, and rank 0's wall time per timed iteration (op + barrier). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GATHER, SCATTER, REDUCE_SCATTER, GATHERV, SCATTERV, ALLGATHERV, ALLTOALLV };
static const char *names[] = { "gather", "scatter", "reduce_scatter", "gatherv", "scatterv",
                               "allgatherv", "alltoallv", NULL };
static int kind, rank, np;
static int *counts, *displs;

/* set the counts and displacements for size bytes */
static void layout(int size)
{
    if (kind == REDUCE_SCATTER) {
        int n = size / 4;
        for (int i = 0; i < np; i++) {
            counts[i] = 0;
            if (n < np) { if (i < n) counts[i] = 1; }
            else counts[i] = n / np + (i < n % np);
        }
        return;
    }
    for (int i = 0; i < np; i++) { counts[i] = size; displs[i] = i * size; }
}

static void op(char *s, char *r, int size)
{
    switch (kind) {
    case GATHER: MPI_Gather(s, size, MPI_CHAR, r, size, MPI_CHAR, 0, MPI_COMM_WORLD); break;
    case SCATTER: MPI_Scatter(s, size, MPI_CHAR, r, size, MPI_CHAR, 0, MPI_COMM_WORLD); break;
    case REDUCE_SCATTER: MPI_Reduce_scatter(s, r, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); break;
    case GATHERV: MPI_Gatherv(s, size, MPI_CHAR, r, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD); break;
    case SCATTERV: MPI_Scatterv(s, counts, displs, MPI_CHAR, r, size, MPI_CHAR, 0, MPI_COMM_WORLD); break;
    case ALLGATHERV: MPI_Allgatherv(s, size, MPI_CHAR, r, counts, displs, MPI_CHAR, MPI_COMM_WORLD); break;
    case ALLTOALLV: MPI_Alltoallv(s, counts, displs, MPI_CHAR, r, counts, displs, MPI_CHAR, MPI_COMM_WORLD); break;
    }
}

int main(int argc, char **argv)
{
    const int maxsz = 1048576;
    int sizes[64], nsizes = 0;
    double budget = getenv("COLL_BUDGET_S") ? atof(getenv("COLL_BUDGET_S")) : 1.0;
    int small = getenv("COLL_ITERS") ? atoi(getenv("COLL_ITERS")) : 1000;
    int skip_small = getenv("COLL_SKIP") ? atoi(getenv("COLL_SKIP")) : 100;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    kind = -1;
    for (int i = 0; argc > 1 && names[i]; i++) if (!strcmp(argv[1], names[i])) kind = i;
    if (kind < 0) {
        if (!rank) fprintf(stderr, "usage: collv gather|scatter|reduce_scatter|gatherv|scatterv|allgatherv|alltoallv [SIZE...]\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int i = 2; i < argc && nsizes < 64; i++) {
        int s = atoi(argv[i]);
        if (s < 1 || s > maxsz) { if (!rank) fprintf(stderr, "size %s: want 1..%d\n", argv[i], maxsz); MPI_Abort(MPI_COMM_WORLD, 1); }
        sizes[nsizes++] = s;
    }
    if (!nsizes) for (int s = 8; s <= maxsz; s *= 2) sizes[nsizes++] = s;
    counts = malloc(np * sizeof(int));
    displs = malloc(np * sizeof(int));
    /* the largest buffer any of them needs: np blocks of 1 MiB */
    size_t big = (size_t)maxsz * np;
    char *sbuf = NULL, *rbuf = NULL;
    if (!counts || !displs || posix_memalign((void **)&sbuf, 4096, big) || posix_memalign((void **)&rbuf, 4096, big))
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < big / 4; i++) { ((float *)sbuf)[i] = 1.0f; ((float *)rbuf)[i] = 0.0f; }
    if (!rank) printf("# %s %s np=%d\n# size_bytes avg_us min_us max_us iters iter_wall_us\n",
                      names[kind], kind == REDUCE_SCATTER ? "float" : "char", np);

    for (int k = 0; k < nsizes; k++) {
        int size = sizes[k];
        if (kind == REDUCE_SCATTER && size < 4) continue;
        int iters = size > 8192 ? (small / 10 > 1 ? small / 10 : 1) : small;
        int skip = size > 8192 ? (skip_small / 10 > 1 ? skip_small / 10 : 1) : skip_small;
        layout(size);
        MPI_Barrier(MPI_COMM_WORLD);
        double c0 = MPI_Wtime();
        for (int i = 0; i < 5; i++) { op(sbuf, rbuf, size); MPI_Barrier(MPI_COMM_WORLD); }
        double per = (MPI_Wtime() - c0) / 5, permax;
        MPI_Allreduce(&per, &permax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (permax * (iters + skip) > budget) {
            int n = (int)(budget / permax);
            iters = n < 20 ? 20 : (n < iters ? n : iters);
            skip = iters / 10 < 2 ? 2 : (iters / 10 < skip ? iters / 10 : skip);
        }
        double acc = 0, w0 = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < iters + skip; i++) {
            if (i == skip) w0 = MPI_Wtime();
            double t = MPI_Wtime();
            op(sbuf, rbuf, size);
            t = MPI_Wtime() - t;
            if (i >= skip) acc += t;
            MPI_Barrier(MPI_COMM_WORLD);
        }
        double wall = (MPI_Wtime() - w0) * 1e6 / iters;
        double lat = acc * 1e6 / iters, mn, mx, sum;
        MPI_Reduce(&lat, &mn, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
        MPI_Reduce(&lat, &mx, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        MPI_Reduce(&lat, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        if (!rank) printf("%d %.3f %.3f %.3f %d %.3f\n", size, sum / np, mn, mx, iters, wall);
        fflush(stdout);
    }
    if (kind == REDUCE_SCATTER && counts[rank] > 0 && ((float *)rbuf)[0] != np)
        fprintf(stderr, "rank %d: reduce_scatter result %g != %d\n", rank, ((float *)rbuf)[0], np);
    MPI_Finalize();
    return 0;
}
