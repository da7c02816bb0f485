/* TensorFlow V2 checkpoint reader (tensorflow/core/util/tensor_bundle): the index table is
 * scanned once at open into a sorted entry array; tensors are read from the single data
 * shard on demand. Protobuf values are decoded by hand (a few fields, bounds-checked),
 * so there is no protobuf or TensorFlow dependency. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "io/crc32c.h"
#include "error.h"
#include "io/sstable.h"
#include "io/tfckpt.h"

typedef struct {
    size_t name;                  /* offset into the names arena */
    int dtype, ndim, sliced;
    int64_t size[UM_MAXDIM];
    int64_t shard, offset, bytes;
    uint32_t crc;                 /* as stored: masked */
} tf_entry;

struct um_tfckpt {
    char *index_path, *data_path;
    tf_entry *entries;
    int n, cap;
    char *names;
    size_t names_len, names_cap;
    int have_header;
    FILE *data;
    int64_t data_bytes;
};

const char *um_tfckpt_dtype_name(int dtype) {
    switch (dtype) {
    case 1: return "float32";  case 2: return "float64"; case 3: return "int32";
    case 4: return "uint8";    case 5: return "int16";   case 6: return "int8";
    case 7: return "string";   case 9: return "int64";   case 10: return "bool";
    case 14: return "bfloat16"; case 19: return "float16";
    default: return "unsupported dtype";
    }
}

static size_t tf_elem_size(int dtype) {
    switch (dtype) {
    case UM_TF_FLOAT: case UM_TF_INT32: return 4;
    case UM_TF_DOUBLE: case UM_TF_INT64: return 8;
    default: return 0;
    }
}

/* ---- protobuf: only varint, fixed32/64 and length-delimited fields occur here ---- */

typedef struct { const uint8_t *p, *end; } pb_buf;

static int pb_tag(pb_buf *b, uint64_t *field, int *wire) {
    uint64_t tag;
    if (um_get_varint64(&b->p, b->end, &tag)) return -1;
    *field = tag >> 3;
    *wire = (int)(tag & 7);
    return 0;
}

/* Read the value of a field of the given wire type: varints into *v, fixed32 into *v,
 * length-delimited into *sub; an unknown field is skipped the same way. */
static int pb_value(pb_buf *b, int wire, uint64_t *v, pb_buf *sub) {
    uint64_t len;
    switch (wire) {
    case 0: return um_get_varint64(&b->p, b->end, v);
    case 1: if (b->end - b->p < 8) return -1; *v = um_load_le64(b->p); b->p += 8; return 0;
    case 5: if (b->end - b->p < 4) return -1; *v = um_load_le32(b->p); b->p += 4; return 0;
    case 2:
        if (um_get_varint64(&b->p, b->end, &len) || len > (uint64_t)(b->end - b->p)) return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    default: return -1;            /* groups (3, 4) are not used by these messages */
    }
}

/* TensorShapeProto: repeated Dim dim = 2 { int64 size = 1; }; bool unknown_rank = 3. */
static int parse_shape(pb_buf b, tf_entry *e) {
    while (b.p < b.end) {
        uint64_t field, v = 0;
        int wire;
        pb_buf sub = {0};
        if (pb_tag(&b, &field, &wire) || pb_value(&b, wire, &v, &sub)) return -1;
        if (field == 3 && wire == 0 && v) return -2;
        if (field != 2) continue;
        if (wire != 2) return -1;
        if (e->ndim >= UM_MAXDIM) return -3;
        int64_t size = 0;
        while (sub.p < sub.end) {
            uint64_t f2, v2 = 0;
            int w2;
            pb_buf s2;
            if (pb_tag(&sub, &f2, &w2) || pb_value(&sub, w2, &v2, &s2)) return -1;
            if (f2 == 1 && w2 == 0) size = (int64_t)v2;
        }
        if (size < 0) return -2;
        e->size[e->ndim++] = size;
    }
    return 0;
}

static int parse_entry(const char *fname, const char *name, pb_buf b, tf_entry *e) {
    while (b.p < b.end) {
        uint64_t field, v = 0;
        int wire, rc;
        pb_buf sub = {0};
        if (pb_tag(&b, &field, &wire) || pb_value(&b, wire, &v, &sub)) goto corrupt;
        int want = field == 2 || field == 7 ? 2 : field == 6 ? 5 : 0;
        if (field >= 1 && field <= 7 && wire != want) goto corrupt;
        switch (field) {
        case 1: e->dtype = v > 1000 ? -1 : (int)v; break;
        case 2:
            if ((rc = parse_shape(sub, e)) == -3)
                return um_fail(UM_ENOTIMPL, "%s: variable '%s' has more than %d dimensions", fname,
                               name, UM_MAXDIM);
            if (rc == -2)
                return um_fail(UM_EFORMAT, "%s: variable '%s' has an unknown or negative size",
                               fname, name);
            if (rc) goto corrupt;
            break;
        case 3: e->shard = (int64_t)v; break;
        case 4: e->offset = (int64_t)v; break;
        case 5: e->bytes = (int64_t)v; break;
        case 6: e->crc = (uint32_t)v; break;
        case 7: e->sliced = 1; break;
        default: break;
        }
    }
    if (e->shard < 0 || e->offset < 0 || e->bytes < 0) goto corrupt;
    return UM_OK;
corrupt:
    return um_fail(UM_EFORMAT, "%s: corrupt entry (BundleEntryProto) for variable '%s'", fname, name);
}

/* BundleHeaderProto: int32 num_shards = 1; Endianness endianness = 2 (0 = little). */
static int parse_header(const char *fname, pb_buf b) {
    uint64_t shards = 1, endian = 0;
    while (b.p < b.end) {
        uint64_t field, v = 0;
        int wire;
        pb_buf sub;
        if (pb_tag(&b, &field, &wire) || pb_value(&b, wire, &v, &sub))
            return um_fail(UM_EFORMAT, "%s: corrupt checkpoint header (BundleHeaderProto)", fname);
        if (field == 1 && wire == 0) shards = v;
        if (field == 2 && wire == 0) endian = v;
    }
    if (shards != 1)
        return um_fail(UM_ENOTIMPL, "%s: the checkpoint has %llu data shards; umbra reads "
                       "single-shard checkpoints", fname, (unsigned long long)shards);
    if (endian != 0)
        return um_fail(UM_ENOTIMPL, "%s: the checkpoint was written big-endian; umbra reads "
                       "little-endian checkpoints", fname);
    return UM_OK;
}

static int grow(void **arr, size_t elem, size_t len, size_t *cap, size_t need) {
    if (need <= *cap) return UM_OK;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap *= 2;
    void *n = um_alloc(ncap * elem);
    if (!n) return UM_ENOMEM;
    if (len) memcpy(n, *arr, len * elem);
    um_dealloc(*arr);
    *arr = n;
    *cap = ncap;
    return UM_OK;
}

/* Table visitor: the empty key is the header; every other key is a variable, in order. */
static int add_entry(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
    um_tfckpt *ck = ud;
    pb_buf b = {val, val + vlen};
    const char *fname = ck->index_path;
    if (memchr(key, 0, klen))
        return um_fail(UM_EFORMAT, "%s: a variable name contains a NUL byte", fname);
    if (klen == 0) {
        if (ck->have_header || ck->n)
            return um_fail(UM_EFORMAT, "%s: the header entry is not first", fname);
        ck->have_header = 1;
        return parse_header(fname, b);
    }
    if (!ck->have_header) return um_fail(UM_EFORMAT, "%s: no checkpoint header entry", fname);
    if (ck->n) {
        const char *prev = ck->names + ck->entries[ck->n - 1].name;
        size_t plen = strlen(prev);
        int c = memcmp(prev, key, plen < klen ? plen : klen);
        if (c > 0 || (c == 0 && plen >= klen))
            return um_fail(UM_EFORMAT, "%s: variable names out of order at '%s': the file is "
                           "corrupt", fname, (const char *)key);
    }
    size_t ncap = (size_t)ck->cap;
    if (grow((void **)&ck->entries, sizeof(tf_entry), (size_t)ck->n, &ncap, (size_t)ck->n + 1) ||
        grow((void **)&ck->names, 1, ck->names_len, &ck->names_cap, ck->names_len + klen + 1))
        return UM_ENOMEM;
    ck->cap = (int)ncap;
    tf_entry *e = &ck->entries[ck->n];
    memset(e, 0, sizeof *e);
    e->name = ck->names_len;
    memcpy(ck->names + ck->names_len, key, klen + 1);
    ck->names_len += klen + 1;
    int rc = parse_entry(fname, (const char *)key, b, e);
    if (rc == UM_OK) ck->n++;
    return rc;
}

static char *concat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = um_alloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static int read_index(um_tfckpt *ck) {
    FILE *f = fopen(ck->index_path, "rb");
    if (!f)
        return um_fail(UM_EIO, "cannot open TensorFlow checkpoint index '%s': %s", ck->index_path,
                       strerror(errno));
    uint8_t *buf = NULL;
    int rc = UM_OK;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = um_fail(UM_EIO, "cannot read '%s': %s", ck->index_path, strerror(errno));
    } else if (!(buf = um_alloc((size_t)n + 1))) {
        rc = UM_ENOMEM;
    } else if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        rc = um_fail(UM_EIO, "cannot read '%s': short read", ck->index_path);
    } else {
        rc = um_sstable_scan(buf, (size_t)n, ck->index_path, add_entry, ck);
        if (rc == UM_OK && !ck->have_header)
            rc = um_fail(UM_EFORMAT, "%s: no checkpoint header entry", ck->index_path);
    }
    um_dealloc(buf);
    fclose(f);
    return rc;
}

static int open_data(um_tfckpt *ck) {
    ck->data = fopen(ck->data_path, "rb");
    if (!ck->data)
        return um_fail(UM_EIO, "cannot open TensorFlow checkpoint data '%s': %s", ck->data_path,
                       strerror(errno));
    if (fseeko(ck->data, 0, SEEK_END) != 0 || (ck->data_bytes = ftello(ck->data)) < 0)
        return um_fail(UM_EIO, "cannot read '%s': %s", ck->data_path, strerror(errno));
    for (int i = 0; i < ck->n; i++) {
        const tf_entry *e = &ck->entries[i];
        if (e->shard != 0)
            return um_fail(UM_EFORMAT, "%s: variable '%s' is in shard %lld of a 1-shard checkpoint",
                           ck->index_path, ck->names + e->name, (long long)e->shard);
        if (e->offset > ck->data_bytes || e->bytes > ck->data_bytes - e->offset)
            return um_fail(UM_EFORMAT, "%s: data file is shorter than variable '%s' needs (offset "
                           "%lld + size %lld > %lld bytes): truncated", ck->data_path,
                           ck->names + e->name, (long long)e->offset, (long long)e->bytes,
                           (long long)ck->data_bytes);
    }
    return UM_OK;
}

int um_tfckpt_open(um_tfckpt **out, const char *prefix) {
    *out = NULL;
    if (!prefix || !*prefix) return um_fail(UM_EINVAL, "tf checkpoint: empty prefix");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return um_fail(UM_ENOTIMPL, "tf checkpoint: reading on a big-endian host is not supported");
#endif
    um_tfckpt *ck = um_calloc(sizeof *ck);
    if (!ck) return UM_ENOMEM;
    int rc = UM_OK;
    ck->index_path = concat(prefix, ".index");
    ck->data_path = concat(prefix, ".data-00000-of-00001");
    if (!ck->index_path || !ck->data_path) rc = UM_ENOMEM;
    if (rc == UM_OK) rc = read_index(ck);
    if (rc == UM_OK) rc = open_data(ck);
    if (rc != UM_OK) {
        um_tfckpt_close(ck);
        return rc;
    }
    *out = ck;
    return UM_OK;
}

void um_tfckpt_close(um_tfckpt *ck) {
    if (!ck) return;
    if (ck->data) fclose(ck->data);
    um_dealloc(ck->entries);
    um_dealloc(ck->names);
    um_dealloc(ck->index_path);
    um_dealloc(ck->data_path);
    um_dealloc(ck);
}

int um_tfckpt_count(const um_tfckpt *ck) { return ck->n; }

int um_tfckpt_entry(const um_tfckpt *ck, int i, const char **name, int *dtype, int *ndim, int64_t *sizes) {
    if (i < 0 || i >= ck->n)
        return um_fail(UM_EINVAL, "tf checkpoint: entry %d out of range 0..%d", i, ck->n - 1);
    const tf_entry *e = &ck->entries[i];
    if (name) *name = ck->names + e->name;
    if (dtype) *dtype = e->dtype;
    if (ndim) *ndim = e->ndim;
    if (sizes) memcpy(sizes, e->size, sizeof(int64_t) * (size_t)e->ndim);
    return UM_OK;
}

int um_tfckpt_find(const um_tfckpt *ck, const char *name) {
    int lo = 0, hi = ck->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->names + ck->entries[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* Widen or narrow the raw little-endian values of src into the tensor's dtype. */
static void convert(um_tensor *t, int dtype, const uint8_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (dtype == UM_TF_INT32) {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            um_i64(t)[i] = v;
        } else {
            double v;
            memcpy(&v, src + 8 * i, 8);
            um_f32(t)[i] = (float)v;
        }
    }
}

int um_tfckpt_read(um_tfckpt *ck, const char *name, um_tensor **out) {
    *out = NULL;
    int i = um_tfckpt_find(ck, name);
    if (i < 0) return um_fail(UM_EINVAL, "%s: no variable '%s' in the checkpoint", ck->index_path, name);
    const tf_entry *e = &ck->entries[i];
    size_t esize = tf_elem_size(e->dtype);
    if (e->sliced)
        return um_fail(UM_ENOTIMPL, "%s: variable '%s' is stored in slices (partitioned); umbra "
                       "reads whole tensors only", ck->index_path, name);
    if (!esize)
        return um_fail(UM_ENOTIMPL, "%s: variable '%s' has dtype %s (%d); umbra reads float32, "
                       "float64, int32 and int64", ck->index_path, name,
                       um_tfckpt_dtype_name(e->dtype), e->dtype);
    int64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        if (e->size[d] && numel > INT64_MAX / 8 / e->size[d])
            return um_fail(UM_EFORMAT, "%s: variable '%s' has an impossible shape", ck->index_path, name);
        numel *= e->size[d];
    }
    if ((uint64_t)numel * esize != (uint64_t)e->bytes) {
        char shape[128];
        return um_fail(UM_EFORMAT, "%s: variable '%s': shape %s of %s needs %lld bytes, the index "
                       "says %lld", ck->index_path, name, um_sizes_str(e->ndim, e->size, shape, sizeof shape),
                       um_tfckpt_dtype_name(e->dtype), (long long)(numel * (int64_t)esize),
                       (long long)e->bytes);
    }
    um_dtype dt = e->dtype == UM_TF_FLOAT || e->dtype == UM_TF_DOUBLE ? UM_FLOAT32 : UM_INT64;
    int direct = dt == UM_FLOAT32 ? e->dtype == UM_TF_FLOAT : e->dtype == UM_TF_INT64;
    um_tensor *t = NULL;
    uint8_t *tmp = NULL;
    int rc = um_tensor_new(&t, dt, e->ndim, e->size, NULL);
    if (rc == UM_OK && !direct && !(tmp = um_alloc((size_t)e->bytes + 1))) rc = UM_ENOMEM;
    if (rc != UM_OK) goto done;
    uint8_t *raw = direct ? (uint8_t *)t->storage->data : tmp;
    if (fseeko(ck->data, (off_t)e->offset, SEEK_SET) != 0 ||
        fread(raw, 1, (size_t)e->bytes, ck->data) != (size_t)e->bytes) {
        rc = um_fail(UM_EFORMAT, "%s: cannot read variable '%s' (offset %lld, %lld bytes): the "
                     "data file is truncated", ck->data_path, name, (long long)e->offset,
                     (long long)e->bytes);
        goto done;
    }
    uint32_t actual = um_crc32c(raw, (size_t)e->bytes);
    if (actual != um_crc32c_unmask(e->crc)) {
        rc = um_fail(UM_EFORMAT, "%s: tensor CRC mismatch for variable '%s' (stored 0x%08x, computed "
                     "0x%08x): the data file is corrupt", ck->data_path, name,
                     um_crc32c_unmask(e->crc), actual);
        goto done;
    }
    if (!direct) convert(t, e->dtype, tmp, numel);
done:
    um_dealloc(tmp);
    if (rc != UM_OK) um_tensor_release(t);
    else *out = t;
    return rc;
}
