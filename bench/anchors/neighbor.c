/* neighbor.c - the anchor of gorun-bench neighbor_alltoall (and neighbor_isend): the halo
 * exchange of a 2-D stencil with MPI_Neighbor_alltoall, the method of collv.c and gorun-bench.
 *   grid   MPI_Dims_create(np, 2, {0, 0}), MPI_Cart_create periodic in both dimensions, no
 *          reorder (2 ranks 2x1, 4 ranks 2x2, 8 ranks 4x2: gorun's comm.DimsCreate and Cart)
 *   op     MPI_Neighbor_alltoall of 4 faces of size bytes (MPI_CHAR): face j of sbuf to
 *          neighbour j, face i of rbuf from neighbour i (per dimension the -1, then the +1
 *          neighbour)
 * usage: neighbor [SIZE...]   face sizes in bytes (default 8..1 MiB, powers of 2)
 * Counts are gorun-bench's, so rows line up: a barrier before each size, then per iteration
 * t=Wtime; op; acc+=Wtime-t; MPI_Barrier. small (<=8KB): 100 warmup + 1000 timed; large:
 * 10 + 100 (OSU's defaults; COLL_ITERS / COLL_SKIP override the small counts, and the large
 * ones scale with them, as gorun-bench -i/-x do); the first size warms up as many iterations
 * as it times, as gorun-bench's first size does. Per-rank average, then avg/min/max over
 * ranks; "avg" is the OSU number. The table is gorun-bench's layout (OSU's -f columns).
 * Unlike collv.c there is no time cap unless COLL_BUDGET_S is set: then, as collv.c does, 5
 * calibration ops are timed first and the timed count is lowered (never below 20) so a size
 * costs about COLL_BUDGET_S seconds; the Iterations column gives the count used.
 * After the timed calls each rank checks that rbuf's face i holds face i^1 of what its
 * neighbour sent (the face sent to the -1 neighbour arrives there from the +1 one); rank 0
 * reports on stderr how many ranks found another face there (where one rank is both
 * neighbours along a dimension of 1 or 2, the library decides which message is which). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACES 4

static const char *library(void)
{
    static char buf[64];
#if defined(OPEN_MPI)
    snprintf(buf, sizeof buf, "Open MPI %d.%d.%d", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION, OMPI_RELEASE_VERSION);
#elif defined(MPICH_VERSION)
    snprintf(buf, sizeof buf, "MPICH %s", MPICH_VERSION);
#else
    snprintf(buf, sizeof buf, "MPI %d.%d", MPI_VERSION, MPI_SUBVERSION);
#endif
    return buf;
}

/* scaled is n*num/den, at least 1 when n is (gorun-bench's options.go) */
static int scaled(int n, int num, int den)
{
    if (n <= 0) return 0;
    return n * num / den > 1 ? n * num / den : 1;
}

int main(int argc, char **argv)
{
    const int maxsz = 1048576;
    int sizes[64], nsizes = 0, rank, np;
    double budget = getenv("COLL_BUDGET_S") ? atof(getenv("COLL_BUDGET_S")) : 0;
    int small = getenv("COLL_ITERS") ? atoi(getenv("COLL_ITERS")) : 1000;
    int skip_small = getenv("COLL_SKIP") ? atoi(getenv("COLL_SKIP")) : 100;
    int dims[2] = { 0, 0 }, periods[2] = { 1, 1 };
    MPI_Comm cart;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    for (int i = 1; i < argc && nsizes < 64; i++) {
        int s = atoi(argv[i]);
        if (s < 1 || s > maxsz) { if (!rank) fprintf(stderr, "size %s: want 1..%d\n", argv[i], maxsz); MPI_Abort(MPI_COMM_WORLD, 1); }
        sizes[nsizes++] = s;
    }
    if (!nsizes) for (int s = 8; s <= maxsz; s *= 2) sizes[nsizes++] = s;
    MPI_Dims_create(np, 2, dims);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    MPI_Comm_rank(cart, &rank);
    size_t big = (size_t)maxsz * FACES;
    char *sbuf = NULL, *rbuf = NULL;
    if (posix_memalign((void **)&sbuf, 4096, big) || posix_memalign((void **)&rbuf, 4096, big))
        MPI_Abort(MPI_COMM_WORLD, 2);
    memset(rbuf, 0, big);
    if (!rank) {
        printf("# gorun Neighbor Alltoall Latency Test (anchor neighbor.c, %s)\n", library());
        printf("# grid %dx%d periodic, MPI_Neighbor_alltoall of %d faces of Size bytes, %d ranks\n",
               dims[0], dims[1], FACES, np);
        printf("%-10s%20s%20s%20s%12s\n", "# Size", "Avg Latency(us)", "Min Latency(us)", "Max Latency(us)", "Iterations");
    }

    int wrong = 0;
    for (int k = 0; k < nsizes; k++) {
        int size = sizes[k];
        for (int j = 0; j < FACES; j++) memset(sbuf + (size_t)j * size, 'a' + j, size);
        int iters = size > 8192 ? scaled(small, 100, 1000) : small;
        int skip = size > 8192 ? scaled(skip_small, 10, 100) : skip_small;
        if (k == 0 && skip < iters) skip = iters;
        if (budget > 0) {
            MPI_Barrier(cart);
            double c0 = MPI_Wtime();
            for (int i = 0; i < 5; i++) {
                MPI_Neighbor_alltoall(sbuf, size, MPI_CHAR, rbuf, size, MPI_CHAR, cart);
                MPI_Barrier(cart);
            }
            double per = (MPI_Wtime() - c0) / 5, permax;
            MPI_Allreduce(&per, &permax, 1, MPI_DOUBLE, MPI_MAX, cart);
            if (permax * (iters + skip) > budget) {
                int n = (int)(budget / permax);
                iters = n < 20 ? 20 : (n < iters ? n : iters);
                skip = iters / 10 < 2 ? 2 : (iters / 10 < skip ? iters / 10 : skip);
            }
        }
        double acc = 0;
        MPI_Barrier(cart);
        for (int i = 0; i < iters + skip; i++) {
            double t = MPI_Wtime();
            MPI_Neighbor_alltoall(sbuf, size, MPI_CHAR, rbuf, size, MPI_CHAR, cart);
            t = MPI_Wtime() - t;
            if (i >= skip) acc += t;
            MPI_Barrier(cart);
        }
        for (int i = 0; i < FACES && !wrong; i++)
            if (rbuf[(size_t)i * size] != 'a' + (i ^ 1) || rbuf[(size_t)i * size + size - 1] != 'a' + (i ^ 1))
                wrong = 1;
        double lat = acc * 1e6 / iters, mn, mx, sum;
        MPI_Reduce(&lat, &mn, 1, MPI_DOUBLE, MPI_MIN, 0, cart);
        MPI_Reduce(&lat, &mx, 1, MPI_DOUBLE, MPI_MAX, 0, cart);
        MPI_Reduce(&lat, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, cart);
        if (!rank) printf("%-10d%20.2f%20.2f%20.2f%12d\n", size, sum / np, mn, mx, iters);
        fflush(stdout);
    }
    int nwrong = 0;
    MPI_Reduce(&wrong, &nwrong, 1, MPI_INT, MPI_SUM, 0, cart);
    if (!rank && nwrong)
        fprintf(stderr, "neighbor: on %d of %d ranks a face landed in another block than MPI-4's (face i from face i^1)\n",
                nwrong, np);
    MPI_Comm_free(&cart);
    MPI_Finalize();
    return 0;
}
