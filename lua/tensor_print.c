/* __tostring of tensors, printed like Torch7: a matrix of right-aligned entries (1-D as a
 * column), 3-D and up as 2-D slices headed "(i,j,.,.) =", then a line such as
 * "[umbra.Tensor float32 of size 2x2]". A dimension longer than 10 shows its first and
 * last 3 entries around "...". float32 prints with 4 decimals (or %.4e for very large or
 * very small magnitudes), int64 as integers; one width serves the whole tensor. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "tensor_lua.h"

#define SHOW_ALL 10   /* longest dimension printed in full */
#define SHOW_EDGE 3   /* entries kept at each end of a longer one */
#define ELLIPSIS (-1) /* marker in a list of shown positions */

typedef struct {
    const um_tensor *t;
    int64_t shown[UM_MAXDIM][2 * SHOW_EDGE + 1]; /* positions per dimension, ELLIPSIS between */
    int nshown[UM_MAXDIM];
    int sci;    /* use %.4e */
    int width;  /* of every entry */
    double maxabs;
} printer;

static void choose_positions(printer *p) {
    for (int d = 0; d < p->t->ndim; d++) {
        int64_t n = p->t->size[d];
        int k = 0;
        if (n <= SHOW_ALL) {
            for (int64_t i = 0; i < n; i++) p->shown[d][k++] = i;
        } else {
            for (int64_t i = 0; i < SHOW_EDGE; i++) p->shown[d][k++] = i;
            p->shown[d][k++] = ELLIPSIS;
            for (int64_t i = n - SHOW_EDGE; i < n; i++) p->shown[d][k++] = i;
        }
        p->nshown[d] = k;
    }
}

/* Text of the element at idx into buf. */
static int format_entry(const printer *p, const int64_t *idx, char *buf, size_t n) {
    int64_t off = 0;
    for (int d = 0; d < p->t->ndim; d++) off += idx[d] * p->t->stride[d];
    if (p->t->dtype == UM_INT64) return snprintf(buf, n, "%lld", (long long)um_i64(p->t)[off]);
    double v = um_f32(p->t)[off];
    if (isnan(v)) return snprintf(buf, n, "nan");
    if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf");
    if (v == 0) v = 0; /* no "-0.0000" */
    return snprintf(buf, n, p->sci ? "%.4e" : "%.4f", v);
}

/* Visit every shown element (pass 0: largest magnitude, pass 1: widest text). */
static void scan(printer *p, int pass, int64_t *idx, int d) {
    if (d == p->t->ndim) {
        char buf[64];
        int len = format_entry(p, idx, buf, sizeof buf);
        if (pass == 0 && p->t->dtype == UM_FLOAT32) {
            int64_t off = 0;
            for (int k = 0; k < p->t->ndim; k++) off += idx[k] * p->t->stride[k];
            double a = fabs((double)um_f32(p->t)[off]);
            if (isfinite(a) && a > p->maxabs) p->maxabs = a;
        }
        /* a non-negative entry keeps a blank where a minus sign would go */
        if (buf[0] != '-') len++;
        if (pass == 1 && len > p->width) p->width = len;
        return;
    }
    for (int k = 0; k < p->nshown[d]; k++) {
        if (p->shown[d][k] == ELLIPSIS) continue;
        idx[d] = p->shown[d][k];
        scan(p, pass, idx, d + 1);
    }
}

static void add_entry(luaL_Buffer *b, const printer *p, const int64_t *idx) {
    char buf[64];
    int len = idx ? format_entry(p, idx, buf, sizeof buf) : snprintf(buf, sizeof buf, "...");
    for (int k = len; k < p->width; k++) luaL_addchar(b, ' ');
    luaL_addlstring(b, buf, (size_t)len);
}

/* The last one or two dimensions as lines: a column for 1-D, rows for 2-D. */
static void add_matrix(luaL_Buffer *b, const printer *p, int64_t *idx) {
    int nd = p->t->ndim, rd = nd - 2 + (nd == 1), cd = nd - 1;
    int rows = nd == 1 ? p->nshown[cd] : p->nshown[rd];
    for (int r = 0; r < rows; r++) {
        if (nd == 1) {
            idx[cd] = p->shown[cd][r];
            add_entry(b, p, idx[cd] == ELLIPSIS ? NULL : idx);
            luaL_addchar(b, '\n');
            continue;
        }
        idx[rd] = p->shown[rd][r];
        if (idx[rd] == ELLIPSIS) {
            add_entry(b, p, NULL);
            luaL_addchar(b, '\n');
            continue;
        }
        for (int c = 0; c < p->nshown[cd]; c++) {
            if (c) luaL_addchar(b, ' ');
            idx[cd] = p->shown[cd][c];
            add_entry(b, p, idx[cd] == ELLIPSIS ? NULL : idx);
        }
        luaL_addchar(b, '\n');
    }
}

/* Leading dimensions of a 3-D+ tensor: one "(i,j,.,.) =" block per shown slice. */
static void add_slices(luaL_Buffer *b, const printer *p, int64_t *idx, int d, int *first) {
    if (d == p->t->ndim - 2) {
        char head[128];
        size_t k = 0;
        if (!*first) luaL_addchar(b, '\n');
        *first = 0;
        k += (size_t)snprintf(head + k, sizeof head - k, "(");
        for (int j = 0; j < d; j++)
            k += (size_t)snprintf(head + k, sizeof head - k, "%lld,", (long long)idx[j] + 1);
        snprintf(head + k, sizeof head - k, ".,.) =\n");
        luaL_addstring(b, head);
        add_matrix(b, p, idx);
        return;
    }
    for (int k = 0; k < p->nshown[d]; k++) {
        idx[d] = p->shown[d][k];
        if (idx[d] == ELLIPSIS) {
            luaL_addstring(b, *first ? "...\n" : "\n...\n");
            continue;
        }
        add_slices(b, p, idx, d + 1, first);
    }
}

static void add_footer(luaL_Buffer *b, const um_tensor *t) {
    char buf[160];
    size_t k = (size_t)snprintf(buf, sizeof buf, "[umbra.Tensor %s ", um_dtype_name(t->dtype));
    if (t->ndim == 0) k += (size_t)snprintf(buf + k, sizeof buf - k, "with no dimensions");
    else k += (size_t)snprintf(buf + k, sizeof buf - k, "of size ");
    for (int d = 0; d < t->ndim; d++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, d ? "x%lld" : "%lld", (long long)t->size[d]);
    if (!um_backend_of(t)->is_host)
        snprintf(buf + k, sizeof buf - k, " on %s", um_backend_of(t)->name);
    luaL_addstring(b, buf);
    luaL_addchar(b, ']');
}

int um_lua_tensor_tostring(lua_State *L) {
    um_lua_tensor_box *box = luaL_checkudata(L, 1, UM_TENSOR_MT);
    if (!box->t) {
        lua_pushliteral(L, "[umbra.Tensor (freed)]");
        return 1;
    }
    printer p = {.t = um_lua_host_view(L, box->t, "tostring")};
    int64_t idx[UM_MAXDIM] = {0};
    int first = 1;
    choose_positions(&p);
    scan(&p, 0, idx, 0);
    p.sci = p.maxabs >= 1e5 || (p.maxabs > 0 && p.maxabs < 1e-3);
    scan(&p, 1, idx, 0);

    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (um_numel(p.t) > 0) {
        if (p.t->ndim == 0) {
            add_entry(&b, &p, idx);
            luaL_addchar(&b, '\n');
        } else if (p.t->ndim <= 2) {
            add_matrix(&b, &p, idx);
        } else {
            add_slices(&b, &p, idx, 0, &first);
        }
    }
    add_footer(&b, box->t);
    luaL_pushresult(&b);
    return 1;
}
