/* Storage and tensor objects: creation, reference counting, shape helpers and views.
 * Views share the storage and only change offset, sizes and strides. */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "tensor.h"

size_t um_dtype_size(um_dtype dt) { return dt == UM_INT64 ? 8 : 4; }
const char *um_dtype_name(um_dtype dt) { return dt == UM_INT64 ? "int64" : "float32"; }

int64_t um_numel(const um_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->size[i];
    return n;
}

int um_is_contiguous(const um_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->size[i] != 1 && t->stride[i] != expect) return 0;
        expect *= t->size[i];
    }
    return 1;
}

int um_same_shape(const um_tensor *a, const um_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->size[i] != b->size[i]) return 0;
    return 1;
}

const char *um_sizes_str(int ndim, const int64_t *size, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    if (ndim == 0) { snprintf(buf, n, "scalar"); return buf; }
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)size[i]);
    return buf;
}

const char *um_shape_str(const um_tensor *t, char *buf, size_t n) { return um_sizes_str(t->ndim, t->size, buf, n); }

static int check_sizes(int ndim, const int64_t *size, int64_t *numel) {
    char b[128];
    if (ndim < 0 || ndim > UM_MAXDIM)
        return um_fail(UM_EINVAL, "tensor: expected 0 to %d dimensions, got %d", UM_MAXDIM, ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (size[i] < 0)
            return um_fail(UM_EINVAL, "tensor: sizes must be non-negative, got %s", um_sizes_str(ndim, size, b, sizeof b));
        if (size[i] > 0 && n > ((int64_t)1 << 40) / size[i])
            return um_fail(UM_EINVAL, "tensor: size %s is too large", um_sizes_str(ndim, size, b, sizeof b));
        n *= size[i];
    }
    *numel = n;
    return UM_OK;
}

static um_tensor *tensor_header(um_storage *s, um_dtype dt) {
    um_tensor *t = um_calloc(sizeof *t);
    if (!t) return NULL;
    t->storage = s;
    t->dtype = dt;
    t->refcount = 1;
    return t;
}

static void set_contiguous_strides(um_tensor *t) {
    int64_t st = 1;
    for (int i = t->ndim - 1; i >= 0; i--) { t->stride[i] = st; st *= t->size[i]; }
}

int um_tensor_new(um_tensor **out, um_dtype dt, int ndim, const int64_t *size, const um_backend *be) {
    int64_t n = 0;
    int rc = check_sizes(ndim, size, &n);
    if (rc) return rc;
    if (!be) be = um_cpu_backend();
    um_storage *s = um_calloc(sizeof *s);
    if (!s) return UM_ENOMEM;
    s->bytes = (size_t)n * um_dtype_size(dt);
    s->backend = be;
    s->refcount = 1;
    if ((rc = be->alloc(&s->data, s->bytes ? s->bytes : 1))) { um_dealloc(s); return rc; }
    um_tensor *t = tensor_header(s, dt);
    if (!t) { be->dealloc(s->data); um_dealloc(s); return UM_ENOMEM; }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->size[i] = size[i];
    set_contiguous_strides(t);
    *out = t;
    return UM_OK;
}

int um_tensor_zeros(um_tensor **out, um_dtype dt, int ndim, const int64_t *size, const um_backend *be) {
    um_tensor *t;
    int rc = um_tensor_new(&t, dt, ndim, size, be);
    if (rc) return rc;
    if ((rc = um_backend_of(t)->fill(t, 0.0))) { um_tensor_release(t); return rc; }
    *out = t;
    return UM_OK;
}

int um_tensor_ensure(um_tensor **buf, um_dtype dt, int ndim, const int64_t *size, const um_backend *be) {
    um_tensor *t = *buf;
    if (!be) be = um_cpu_backend();
    if (t && t->dtype == dt && um_backend_of(t) == be && t->refcount == 1) {
        int64_t count = 0;
        int rc = check_sizes(ndim, size, &count);
        if (rc) return rc;
        int same = t->ndim == ndim && um_is_contiguous(t);
        for (int i = 0; same && i < ndim; i++) same = t->size[i] == size[i];
        if (same) return UM_OK;   /* as it is, also a caller's view (a gradient slot) */
        /* Alone on its storage and the storage large enough, but not over four times too
         * large: reshaped in place. An ACET step alternates batches of 128 (PGD) and 256
         * (training); reusing exact shapes only, every layer reallocated its buffers
         * twice a step. The bound keeps one large batch from pinning its memory. */
        const size_t need = (size_t)count * um_dtype_size(dt);
        if (t->storage->refcount == 1 && need <= t->storage->bytes && need >= t->storage->bytes / 4) {
            t->offset = 0;
            t->ndim = ndim;
            for (int i = 0; i < ndim; i++) t->size[i] = size[i];
            set_contiguous_strides(t);
            return UM_OK;
        }
    }
    um_tensor *n;
    int rc = um_tensor_new(&n, dt, ndim, size, be);
    if (rc) return rc;
    um_tensor_release(t);
    *buf = n;
    return UM_OK;
}

void um_tensor_retain(um_tensor *t) { if (t) t->refcount++; }

void um_tensor_release(um_tensor *t) {
    if (!t || --t->refcount > 0) return;
    um_storage *s = t->storage;
    if (--s->refcount == 0) {
        s->backend->dealloc(s->data);
        um_dealloc(s);
    }
    um_dealloc(t);
}

/* A new header on the same storage, to be shaped by the caller. */
static int new_view(um_tensor **out, um_tensor *t) {
    um_tensor *v = tensor_header(t->storage, t->dtype);
    if (!v) return UM_ENOMEM;
    t->storage->refcount++;
    v->offset = t->offset;
    v->ndim = t->ndim;
    memcpy(v->size, t->size, sizeof v->size);
    memcpy(v->stride, t->stride, sizeof v->stride);
    *out = v;
    return UM_OK;
}

static int check_dim(const char *what, const um_tensor *t, int dim, int extra) {
    if (dim < 0 || dim >= t->ndim + extra)
        return um_fail(UM_EINVAL, "%s: dimension %d out of range for a %d-dimensional tensor", what, dim + 1, t->ndim);
    return UM_OK;
}

static int infer_sizes(const char *what, int64_t numel, int ndim, const int64_t *size, int64_t *res) {
    char b1[128], b2[128];
    int free_dim = -1;
    int64_t known = 1;
    if (ndim < 0 || ndim > UM_MAXDIM) return um_fail(UM_EINVAL, "%s: expected at most %d dimensions, got %d", what, UM_MAXDIM, ndim);
    for (int i = 0; i < ndim; i++) {
        res[i] = size[i];
        if (size[i] == -1) {
            if (free_dim >= 0) return um_fail(UM_EINVAL, "%s: only one size may be -1", what);
            free_dim = i;
        } else if (size[i] < 0) {
            return um_fail(UM_EINVAL, "%s: invalid size %lld", what, (long long)size[i]);
        } else known *= size[i];
    }
    if (free_dim >= 0) {
        if (known == 0 || numel % known) return um_fail(UM_EINVAL, "%s: cannot infer the -1 size of %s for %lld elements", what, um_sizes_str(ndim, size, b1, sizeof b1), (long long)numel);
        res[free_dim] = numel / known;
        known = numel;
    }
    if (known != numel) {
        return um_fail(UM_EINVAL, "%s: size %s has %lld elements, the tensor has %lld", what,
                       um_sizes_str(ndim, res, b2, sizeof b2), (long long)known, (long long)numel);
    }
    return UM_OK;
}

int um_view(um_tensor **out, um_tensor *t, int ndim, const int64_t *size) {
    int64_t res[UM_MAXDIM];
    int rc = infer_sizes("view", um_numel(t), ndim, size, res);
    if (rc) return rc;
    if (!um_is_contiguous(t)) return um_fail(UM_EINVAL, "view: the tensor is not contiguous; call contiguous() first or use reshape");
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) v->size[i] = res[i];
    set_contiguous_strides(v);
    *out = v;
    return UM_OK;
}

int um_reshape(um_tensor **out, um_tensor *t, int ndim, const int64_t *size) {
    if (um_is_contiguous(t)) return um_view(out, t, ndim, size);
    int64_t res[UM_MAXDIM];
    int rc = infer_sizes("reshape", um_numel(t), ndim, size, res);
    if (rc) return rc;
    um_tensor *c;
    if ((rc = um_contiguous(&c, t))) return rc;
    rc = um_view(out, c, ndim, res);
    um_tensor_release(c);
    return rc;
}

int um_narrow(um_tensor **out, um_tensor *t, int dim, int64_t start, int64_t length) {
    int rc = check_dim("narrow", t, dim, 0);
    if (rc) return rc;
    if (start < 0 || length < 0 || start + length > t->size[dim])
        return um_fail(UM_EINVAL, "narrow: range [%lld, %lld] out of bounds for dimension %d of size %lld",
                       (long long)start + 1, (long long)(start + length), dim + 1, (long long)t->size[dim]);
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    v->offset += start * t->stride[dim];
    v->size[dim] = length;
    *out = v;
    return UM_OK;
}

int um_select(um_tensor **out, um_tensor *t, int dim, int64_t index) {
    int rc = check_dim("select", t, dim, 0);
    if (rc) return rc;
    if (index < 0 || index >= t->size[dim])
        return um_fail(UM_EINVAL, "index %lld out of range for dimension %d of size %lld",
                       (long long)index + 1, dim + 1, (long long)t->size[dim]);
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    v->offset += index * t->stride[dim];
    for (int i = dim; i < t->ndim - 1; i++) { v->size[i] = t->size[i + 1]; v->stride[i] = t->stride[i + 1]; }
    v->ndim--;
    *out = v;
    return UM_OK;
}

int um_transpose(um_tensor **out, um_tensor *t, int d0, int d1) {
    int rc;
    if ((rc = check_dim("transpose", t, d0, 0)) || (rc = check_dim("transpose", t, d1, 0))) return rc;
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    v->size[d0] = t->size[d1]; v->size[d1] = t->size[d0];
    v->stride[d0] = t->stride[d1]; v->stride[d1] = t->stride[d0];
    *out = v;
    return UM_OK;
}

int um_permute(um_tensor **out, um_tensor *t, const int *perm) {
    int seen[UM_MAXDIM] = {0};
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]])
            return um_fail(UM_EINVAL, "permute: expected a permutation of 1..%d, got a repeated or out-of-range dimension %d", t->ndim, perm[i] + 1);
        seen[perm[i]] = 1;
    }
    um_tensor *v;
    int rc = new_view(&v, t);
    if (rc) return rc;
    for (int i = 0; i < t->ndim; i++) { v->size[i] = t->size[perm[i]]; v->stride[i] = t->stride[perm[i]]; }
    *out = v;
    return UM_OK;
}

int um_unsqueeze(um_tensor **out, um_tensor *t, int dim) {
    int rc = check_dim("unsqueeze", t, dim, 1);
    if (rc) return rc;
    if (t->ndim >= UM_MAXDIM) return um_fail(UM_EINVAL, "unsqueeze: tensors have at most %d dimensions", UM_MAXDIM);
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    for (int i = t->ndim; i > dim; i--) { v->size[i] = t->size[i - 1]; v->stride[i] = t->stride[i - 1]; }
    v->size[dim] = 1;
    v->stride[dim] = dim < t->ndim ? t->stride[dim] * t->size[dim] : 1;
    v->ndim++;
    *out = v;
    return UM_OK;
}

int um_squeeze(um_tensor **out, um_tensor *t, int dim) {
    int rc;
    if (dim >= 0 && (rc = check_dim("squeeze", t, dim, 0))) return rc;
    um_tensor *v;
    if ((rc = new_view(&v, t))) return rc;
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->size[i] == 1 && (dim < 0 || dim == i)) continue;
        v->size[k] = t->size[i]; v->stride[k] = t->stride[i]; k++;
    }
    v->ndim = k;
    *out = v;
    return UM_OK;
}

int um_contiguous(um_tensor **out, um_tensor *t) {
    if (um_is_contiguous(t)) { um_tensor_retain(t); *out = t; return UM_OK; }
    return um_clone(out, t);
}

int um_clone(um_tensor **out, const um_tensor *t) {
    um_tensor *c;
    int rc = um_tensor_new(&c, t->dtype, t->ndim, t->size, um_backend_of(t));
    if (rc) return rc;
    if ((rc = um_backend_of(t)->copy_strided(c, t))) { um_tensor_release(c); return rc; }
    *out = c;
    return UM_OK;
}

int um_copy_(um_tensor *dst, const um_tensor *src) {
    char b1[128], b2[128];
    if (dst->dtype != src->dtype)
        return um_fail(UM_EINVAL, "copy: dtypes differ (%s destination, %s source)", um_dtype_name(dst->dtype), um_dtype_name(src->dtype));
    if (um_backend_of(dst) != um_backend_of(src)) {
        if (!um_is_contiguous(dst) || !um_is_contiguous(src) || um_numel(dst) != um_numel(src))
            return um_fail(UM_EDEVICE, "copy: across devices both tensors must be contiguous and the same size");
        size_t bytes = (size_t)um_numel(src) * um_dtype_size(src->dtype);
        char *d = (char *)dst->storage->data + dst->offset * um_dtype_size(dst->dtype);
        const char *s = (const char *)src->storage->data + src->offset * um_dtype_size(src->dtype);
        if (um_backend_of(src)->is_host) return um_backend_of(dst)->from_host(d, s, bytes);
        if (um_backend_of(dst)->is_host) return um_backend_of(src)->to_host(d, s, bytes);
        return um_fail(UM_EDEVICE, "copy: between two devices is not supported; go through the CPU");
    }
    if (um_same_shape(dst, src)) return um_backend_of(dst)->copy_strided(dst, src);
    if (um_numel(dst) == um_numel(src) && um_is_contiguous(dst) && um_is_contiguous(src)) {
        um_tensor tmp = *src;
        tmp.ndim = dst->ndim;
        memcpy(tmp.size, dst->size, sizeof tmp.size);
        memcpy(tmp.stride, dst->stride, sizeof tmp.stride);
        return um_backend_of(dst)->copy_strided(dst, &tmp);
    }
    return um_fail(UM_EINVAL, "copy: sizes differ (destination %s, source %s)", um_shape_str(dst, b1, sizeof b1), um_shape_str(src, b2, sizeof b2));
}

int um_fill_(um_tensor *t, double value) {
    if (um_is_contiguous(t)) return um_backend_of(t)->fill(t, value);
    um_tensor *c;
    int rc = um_tensor_new(&c, t->dtype, t->ndim, t->size, um_backend_of(t));
    if (rc) return rc;
    if (!(rc = um_backend_of(t)->fill(c, value))) rc = um_backend_of(t)->copy_strided(t, c);
    um_tensor_release(c);
    return rc;
}

int um_cat(um_tensor **out, int n, um_tensor *const *ts, int dim) {
    char b1[128], b2[128];
    if (n < 1) return um_fail(UM_EINVAL, "cat: expected at least one tensor");
    const um_tensor *a = ts[0];
    int rc = check_dim("cat", a, dim, 0);
    if (rc) return rc;
    int64_t size[UM_MAXDIM];
    memcpy(size, a->size, sizeof size);
    size[dim] = 0;
    for (int k = 0; k < n; k++) {
        const um_tensor *t = ts[k];
        if (t->dtype != a->dtype || t->ndim != a->ndim || um_backend_of(t) != um_backend_of(a))
            return um_fail(UM_EINVAL, "cat: tensor %d has dtype %s, %d dimensions on %s; tensor 1 has %s, %d on %s", k + 1,
                           um_dtype_name(t->dtype), t->ndim, um_backend_of(t)->name, um_dtype_name(a->dtype), a->ndim, um_backend_of(a)->name);
        for (int i = 0; i < a->ndim; i++)
            if (i != dim && t->size[i] != a->size[i])
                return um_fail(UM_EINVAL, "cat: tensor %d has size %s, expected %s except in dimension %d", k + 1,
                               um_shape_str(t, b1, sizeof b1), um_shape_str(a, b2, sizeof b2), dim + 1);
        size[dim] += t->size[dim];
    }
    um_tensor *r;
    if ((rc = um_tensor_new(&r, a->dtype, a->ndim, size, um_backend_of(a)))) return rc;
    int64_t at = 0;
    for (int k = 0; k < n && !rc; k++) {
        um_tensor *part;
        if ((rc = um_narrow(&part, r, dim, at, ts[k]->size[dim]))) break;
        rc = um_backend_of(r)->copy_strided(part, ts[k]);
        um_tensor_release(part);
        at += ts[k]->size[dim];
    }
    if (rc) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

int um_to_dtype(um_tensor **out, const um_tensor *t, um_dtype dt) {
    if (t->dtype == dt) return um_clone(out, t);
    if (!um_backend_of(t)->is_host) return um_fail(UM_ENOTIMPL, "dtype conversion is done on the CPU; move the tensor there first");
    um_tensor *r;
    int rc = um_tensor_new(&r, dt, t->ndim, t->size, um_backend_of(t));
    if (rc) return rc;
    int64_t n = um_numel(t), idx[UM_MAXDIM] = {0};
    for (int64_t i = 0; i < n; i++) {
        double v = um_get(t, idx);
        if (dt == UM_INT64) um_i64(r)[i] = (int64_t)v; else um_f32(r)[i] = (float)v;
        for (int d = t->ndim - 1; d >= 0; d--) { if (++idx[d] < t->size[d]) break; idx[d] = 0; }
    }
    *out = r;
    return UM_OK;
}

int um_to_backend(um_tensor **out, const um_tensor *t, const um_backend *be) {
    if (!be) be = um_cpu_backend();
    um_tensor *c = NULL, *r = NULL;
    int rc = um_clone(&c, t);   /* contiguous on the source device */
    if (rc) return rc;
    if (um_backend_of(t) == be) { *out = c; return UM_OK; }
    if (!(rc = um_tensor_new(&r, t->dtype, t->ndim, t->size, be))) rc = um_copy_(r, c);
    um_tensor_release(c);
    if (rc) { um_tensor_release(r); return rc; }
    *out = r;
    return UM_OK;
}

static int64_t offset_of(const um_tensor *t, const int64_t *index) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += index[i] * t->stride[i];
    return off;
}

double um_get(const um_tensor *t, const int64_t *index) {
    int64_t off = offset_of(t, index);
    return t->dtype == UM_INT64 ? (double)((int64_t *)t->storage->data)[off] : (double)((float *)t->storage->data)[off];
}
