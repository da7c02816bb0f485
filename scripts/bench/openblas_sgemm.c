/* Baseline for the matmul benchmark: OpenBLAS cblas_sgemm called directly.
 * Usage: openblas_sgemm THREADS N... ; prints "N GFLOPS" lines (best of several runs). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s THREADS N...\n", argv[0]); return 2; }
    openblas_set_num_threads(atoi(argv[1]));
    for (int a = 2; a < argc; a++) {
        int n = atoi(argv[a]);
        float *x = malloc(sizeof(float) * n * n), *y = malloc(sizeof(float) * n * n), *z = malloc(sizeof(float) * n * n);
        for (long i = 0; i < (long)n * n; i++) { x[i] = (float)(i % 7) * 0.1f; y[i] = (float)(i % 5) * 0.2f; }
        int reps = n <= 512 ? 20 : (n <= 1024 ? 5 : 2);
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, x, n, y, n, 0.0f, z, n);
            double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        printf("%d %.2f\n", n, 2.0 * n * n * (double)n / best / 1e9);
        free(x); free(y); free(z);
    }
    return 0;
}
