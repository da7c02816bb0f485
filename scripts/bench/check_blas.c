/* Before benchmarking with OpenBLAS's own choice of kernels (scripts/bench/run-all
 * unsets OPENBLAS_CORETYPE, which this workplace sets because older OpenBLAS builds
 * compute wrong results on some processors), check that the chosen kernels are right:
 * cblas_sgemm in all four transpose combinations, 1 and 2 threads, on the shapes umbra's
 * convolutions and linear layers use and on odd sizes, against a double-precision
 * reference. Prints the core name; exits 1 on the first wrong result.
 * Usage: check_blas */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

char *openblas_get_corename(void);

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) - 0.5f;
}

static int check(int m, int n, int k, int ta, int tb, int threads) {
    openblas_set_num_threads(threads);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c = malloc(sizeof(float) * m * n);
    unsigned s = (unsigned)(m * 131 + n * 17 + k);
    for (long i = 0; i < (long)m * k; i++) a[i] = frand(&s);
    for (long i = 0; i < (long)k * n; i++) b[i] = frand(&s);
    for (long i = 0; i < (long)m * n; i++) c[i] = frand(&s);
    float *c0 = malloc(sizeof(float) * m * n);
    for (long i = 0; i < (long)m * n; i++) c0[i] = c[i];
    /* C = 1.5 op(A) op(B) + 0.5 C */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                1.5f, a, ta ? m : k, b, tb ? k : n, 0.5f, c, n);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++)
        for (int j = 0; j < n && !bad; j++) {
            double ref = 0.0, mag = 0.0;
            for (int p = 0; p < k; p++) {
                double x = ta ? a[(long)p * m + i] : a[(long)i * k + p];
                double y = tb ? b[(long)j * k + p] : b[(long)p * n + j];
                ref += x * y;
                mag += fabs(x * y);
            }
            ref = 1.5 * ref + 0.5 * c0[(long)i * n + j];
            double err = fabs(c[(long)i * n + j] - ref);
            if (err > 1e-5 * (1.5 * mag + 1.0)) {
                fprintf(stderr, "check_blas: sgemm %dx%dx%d ta=%d tb=%d threads=%d wrong at (%d,%d): %g, expected %g\n",
                        m, n, k, ta, tb, threads, i, j, c[(long)i * n + j], ref);
                bad = 1;
            }
        }
    free(a); free(b); free(c); free(c0);
    return bad;
}

int main(void) {
    static const int shapes[][3] = {
        {64, 196, 800}, {800, 196, 64}, {64, 800, 196}, {32, 784, 25}, {25, 784, 32}, {32, 25, 784},
        {16, 1024, 144}, {144, 1024, 16}, {16, 144, 1024}, {32, 256, 288}, {64, 64, 576},
        {128, 1024, 3136}, {128, 3136, 1024}, {3136, 1024, 128}, {128, 10, 1024}, {1, 1, 1},
        {7, 13, 5}, {33, 17, 65}, {130, 67, 259}, {255, 257, 3},
    };
    printf("OpenBLAS core: %s\n", openblas_get_corename());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int threads = 1; threads <= 2; threads++)
                if (check(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, threads)) return 1;
    printf("sgemm checked on %zu shapes x 4 transpose cases x 1-2 threads: all within 1e-5 relative\n",
           sizeof shapes / sizeof shapes[0]);
    return 0;
}
