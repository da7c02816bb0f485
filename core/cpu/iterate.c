/* The CPU's strided walker: merges dimensions that are contiguous in every operand, then
 * visits innermost rows, in parallel when the work is large enough to pay for threads. */
#include <string.h>
#include "cpu/cpu.h"

typedef struct {
    int nd;
    int64_t size[UM_MAXDIM];
    int64_t st[3][UM_MAXDIM];   /* strides in bytes */
} walk;

static void coalesce(walk *w) {
    int k = 0;
    for (int i = 0; i < w->nd; i++) {
        if (w->size[i] == 1) continue;
        if (k > 0) {
            int merge = 1;
            for (int t = 0; t < 3; t++) merge &= w->st[t][k - 1] == w->st[t][i] * w->size[i];
            if (merge) {
                w->size[k - 1] *= w->size[i];
                for (int t = 0; t < 3; t++) w->st[t][k - 1] = w->st[t][i];
                continue;
            }
        }
        w->size[k] = w->size[i];
        for (int t = 0; t < 3; t++) w->st[t][k] = w->st[t][i];
        k++;
    }
    if (k == 0) { w->size[0] = 1; for (int t = 0; t < 3; t++) w->st[t][0] = 0; k = 1; }
    w->nd = k;
}

void um_cpu_for_rows(const um_tensor *o, const um_tensor *a, const um_tensor *b, um_row_fn fn, void *ctx) {
    const um_tensor *ts[3] = {o, a, b};
    walk w;
    w.nd = o->ndim;
    memcpy(w.size, o->size, sizeof w.size);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < o->ndim; i++)
            w.st[t][i] = ts[t] ? ts[t]->stride[i] * (int64_t)um_dtype_size(ts[t]->dtype) : 0;
    for (int i = 0; i < o->ndim; i++) if (o->size[i] == 0) return;
    coalesce(&w);
    char *base[3];
    for (int t = 0; t < 3; t++)
        base[t] = ts[t] ? (char *)ts[t]->storage->data + ts[t]->offset * (int64_t)um_dtype_size(ts[t]->dtype) : NULL;
    int last = w.nd - 1;
    int64_t n = w.size[last], rows = 1;
    for (int i = 0; i < last; i++) rows *= w.size[i];
    if (rows == 1 && n > 65536) {
        /* one long row (contiguous operands): cut it into chunks so threads share it */
        int64_t chunk = 16384, nchunks = (n + chunk - 1) / chunk;
        #pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t at = c * chunk, len = at + chunk <= n ? chunk : n - at;
            fn(ctx, base[0] + at * w.st[0][last], w.st[0][last], base[1] ? base[1] + at * w.st[1][last] : NULL,
               w.st[1][last], base[2] ? base[2] + at * w.st[2][last] : NULL, w.st[2][last], len);
        }
        return;
    }
    #pragma omp parallel for if (rows * n > 32768 && rows > 1) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off[3] = {0, 0, 0};
        for (int i = last - 1; i >= 0; i--) {
            int64_t idx = rem % w.size[i];
            rem /= w.size[i];
            for (int t = 0; t < 3; t++) off[t] += idx * w.st[t][i];
        }
        fn(ctx, base[0] + off[0], w.st[0][last], base[1] ? base[1] + off[1] : NULL, w.st[1][last],
           base[2] ? base[2] + off[2] : NULL, w.st[2][last], n);
    }
}
