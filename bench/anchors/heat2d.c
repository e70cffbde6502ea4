/* heat2d.c: the C twin of examples/heat2d, for comparing its halo exchange with MPI's.
 *
 * The same Jacobi stencil on the same grid and decomposition: an NX x NY plate (default
 * 512 x 512), top edge at 1.0, the others 0; MPI_Dims_create(size, {0, 0}) and a
 * non-periodic MPI_Cart_create without reorder; dimension 0 runs down the rows, dimension 1
 * across the columns, blocks uneven by at most one row and column (the first n%p blocks get
 * one more). Every iteration packs the block's four faces (north, south, west, east: the
 * order of the Cart's neighbours), exchanges them with one MPI_Neighbor_alltoallv, unpacks
 * them into the halo (ProcNull faces keep the edge temperature), and sweeps. The exchange,
 * packing included, is timed as heat2d -time times it, and the program prints the same
 * line: the mean over ranks of each rank's mean per iteration, and the slowest rank's.
 *
 *   mpicc.openmpi -O2 -march=native -o heat2d.ompi bench/anchors/heat2d.c
 *   mpirun.openmpi --allow-run-as-root --oversubscribe -n 4 ./heat2d.ompi [NX NY ITERS]
 *   go run ./cmd/gorun -n 4 ./examples/heat2d -time -every 0      (the same, in gorun)
 *
 * It also prints the final residual (max change in the last step), which must equal
 * heat2d's: the same arithmetic in the same order.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void span(int n, int p, int c, int *start, int *size) {
    int base = n / p, extra = n % p;
    *start = c * base + (c < extra ? c : extra);
    *size = base + (c < extra);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int nx = argc > 1 ? atoi(argv[1]) : 512, ny = argc > 2 ? atoi(argv[2]) : 512;
    int iters = argc > 3 ? atoi(argv[3]) : 500;
    int size, dims[2] = {0, 0}, periods[2] = {0, 0}, coords[2];
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Dims_create(size, 2, dims);
    MPI_Comm cart;
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    int me;
    MPI_Comm_rank(cart, &me);
    MPI_Cart_coords(cart, me, 2, coords);
    int x0, lx, y0, ly;
    span(nx, dims[1], coords[1], &x0, &lx);
    span(ny, dims[0], coords[0], &y0, &ly);
    int w = lx + 2;
    double *cur = calloc((size_t)w * (ly + 2), sizeof(double));
    double *next = calloc((size_t)w * (ly + 2), sizeof(double));
    int n = 2 * lx + 2 * ly;
    double *s = calloc(n, sizeof(double)), *r = calloc(n, sizeof(double));
    int counts[4] = {lx, lx, ly, ly}, displs[4] = {0, lx, 2 * lx, 2 * lx + ly};
    int north, south;
    MPI_Cart_shift(cart, 0, 1, &north, &south);
    if (north == MPI_PROC_NULL) {
        for (int j = 1; j <= lx; j++) cur[j] = next[j] = 1.0;
        for (int j = 0; j < lx; j++) r[j] = 1.0;
    }
    double spent = 0, res = 0;
    for (int it = 1; it <= iters; it++) {
        double t0 = MPI_Wtime();
        memcpy(s, cur + w + 1, lx * sizeof(double));
        memcpy(s + lx, cur + ly * w + 1, lx * sizeof(double));
        for (int i = 1; i <= ly; i++) {
            s[2 * lx + i - 1] = cur[i * w + 1];
            s[2 * lx + ly + i - 1] = cur[i * w + lx];
        }
        MPI_Neighbor_alltoallv(s, counts, displs, MPI_DOUBLE, r, counts, displs, MPI_DOUBLE, cart);
        memcpy(cur + 1, r, lx * sizeof(double));
        memcpy(cur + (ly + 1) * w + 1, r + lx, lx * sizeof(double));
        for (int i = 1; i <= ly; i++) {
            cur[i * w] = r[2 * lx + i - 1];
            cur[i * w + lx + 1] = r[2 * lx + ly + i - 1];
        }
        spent += MPI_Wtime() - t0;
        res = 0;
        for (int i = 1; i <= ly; i++)
            for (int j = 1; j <= lx; j++) {
                double v = 0.25 * (cur[(i - 1) * w + j] + cur[(i + 1) * w + j] + cur[i * w + j - 1] + cur[i * w + j + 1]);
                double d = fabs(v - cur[i * w + j]);
                if (d > res) res = d;
                next[i * w + j] = v;
            }
        double *t = cur; cur = next; next = t;
    }
    double mean = spent / (iters > 0 ? iters : 1), sum, slowest, global;
    MPI_Reduce(&mean, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, cart);
    MPI_Reduce(&mean, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, cart);
    MPI_Reduce(&res, &global, 1, MPI_DOUBLE, MPI_MAX, 0, cart);
    if (me == 0) {
        printf("heat2d (C, MPI_Neighbor_alltoallv): %dx%d grid on %d ranks (%dx%d), %d iterations, final residual %.6e\n",
               nx, ny, size, dims[1], dims[0], iters, global);
        printf("halo exchange: %.2f µs per iteration (mean over ranks), %.2f µs on the slowest rank\n",
               sum / size * 1e6, slowest * 1e6);
    }
    free(cur); free(next); free(s); free(r);
    MPI_Comm_free(&cart);
    MPI_Finalize();
    return 0;
}
