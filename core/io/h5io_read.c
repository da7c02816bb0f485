/* Reading HDF5 checkpoints (see h5io.h): into caller tensors after checking format,
 * names, dtypes and shapes of all of them (um_h5_load), or everything under a prefix with
 * its attributes (um_h5_read, for optimiser state and import tools). Any HDF5 failure,
 * including a Fletcher-32 mismatch, becomes a message naming the file and the tensor. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "io/h5io.h"
#include "io/h5io_seal.h"
#include "io/h5io_util.h"

/* Open path for reading after checking its digest block (h5io_seal.h); *sealed tells
 * whether it had one (version 2) or is a version 1 or foreign HDF5 file. */
static int open_file(hid_t *out, int *sealed, const char *path) {
    char why[256];
    int v = um_h5_verify_file(path);
    if (v < 0) return v;
    *sealed = v == UM_H5_SEALED;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return um_fail(UM_EFORMAT, "%s: not a readable HDF5 file (truncated or corrupt)%s", path, um_h5_reason(why, sizeof why));
    *out = f;
    return UM_OK;
}

/* Read a scalar attribute into a (strings copied with um_alloc). 1: read, 0: not a
 * scalar string/integer/float (skipped), < 0: error. */
static int read_attr(hid_t attr, um_h5_attr *a) {
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr), mem = -1;
    int rc = 0;
    if (type < 0 || space < 0) { rc = UM_EFORMAT; goto done; }
    H5T_class_t cls = H5Tget_class(type);
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    if (cls == H5T_NO_CLASS || npoints < 0) { rc = UM_EFORMAT; goto done; }
    if (npoints != 1) goto done;
    if (cls == H5T_INTEGER) {
        a->kind = UM_H5_INT;
        rc = H5Aread(attr, H5T_NATIVE_INT64, &a->i) < 0 ? UM_EFORMAT : 1;
    } else if (cls == H5T_FLOAT) {
        a->kind = UM_H5_DOUBLE;
        rc = H5Aread(attr, H5T_NATIVE_DOUBLE, &a->d) < 0 ? UM_EFORMAT : 1;
    } else if (cls == H5T_STRING) {
        a->kind = UM_H5_STRING;
        mem = H5Tcopy(H5T_C_S1);
        htri_t variable = H5Tis_variable_str(type);
        H5T_cset_t cset = H5Tget_cset(type);
        if (mem < 0 || variable < 0 || cset < 0) { rc = UM_EFORMAT; goto done; }
        if (variable) {
            char *s = NULL;
            if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Tset_cset(mem, cset) < 0) { rc = UM_EFORMAT; goto done; }
            if (H5Aread(attr, mem, &s) < 0) { rc = UM_EFORMAT; goto done; }
            a->s = um_h5_strdup(s ? s : "");
            H5free_memory(s);
        } else {
            size_t n = H5Tget_size(type);
            if (n == 0 || n > (1u << 20)) { rc = UM_EFORMAT; goto done; }
            char *s = um_alloc(n + 1);
            if (!s) { rc = UM_ENOMEM; goto done; }
            /* room for the terminator HDF5 adds */
            if (H5Tset_size(mem, n + 1) < 0 || H5Aread(attr, mem, s) < 0) { um_dealloc(s); rc = UM_EFORMAT; goto done; }
            s[n] = '\0';
            a->s = s;
        }
        rc = a->s ? 1 : UM_ENOMEM;
    }
done:
    if (mem >= 0) H5Tclose(mem);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* Attribute name of loc as an um_h5_attr (0: absent or not a scalar). */
static int read_named_attr(hid_t loc, const char *name, um_h5_attr *a) {
    htri_t exists = H5Aexists(loc, name);
    if (exists <= 0) return exists < 0 ? UM_EFORMAT : 0;
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0) return UM_EFORMAT;
    int rc = read_attr(attr, a);
    H5Aclose(attr);
    return rc;
}

/* format = "umbra-checkpoint" and the version that matches the file's kind: 2 with the
 * digest block, 1 without (files written before the block existed). */
static int check_format(hid_t file, const char *path, int sealed) {
    um_h5_attr a = {0};
    int rc = read_named_attr(file, "format", &a);
    int ok = rc == 1 && a.kind == UM_H5_STRING && strcmp(a.s, UM_H5_FORMAT) == 0;
    if (rc == UM_ENOMEM) return rc;
    if (rc == 1 && !ok)
        rc = um_fail(UM_EFORMAT, "%s: expected attribute format = \"%s\", found %s%s%s", path, UM_H5_FORMAT,
                     a.kind == UM_H5_STRING ? "\"" : "a number", a.kind == UM_H5_STRING ? a.s : "", a.kind == UM_H5_STRING ? "\"" : "");
    else if (rc < 0)
        rc = um_fail(UM_EFORMAT, "%s: cannot read the format attribute (corrupt file?)", path);
    else if (rc == 0)
        rc = um_fail(UM_EFORMAT, "%s: not an umbra checkpoint (expected attribute format = \"%s\", found none)", path, UM_H5_FORMAT);
    if (a.kind == UM_H5_STRING) um_dealloc((char *)a.s);
    if (rc < 0) return rc;
    memset(&a, 0, sizeof a);
    rc = read_named_attr(file, "version", &a);
    if (rc == UM_ENOMEM) return rc;
    if (a.kind == UM_H5_STRING) um_dealloc((char *)a.s);
    if (rc != 1 || a.kind != UM_H5_INT)
        return um_fail(UM_EFORMAT, "%s: expected an integer attribute version, found none", path);
    if (a.i != 1 && a.i != UM_H5_VERSION)
        return um_fail(UM_EFORMAT, "%s: checkpoint version %lld, this umbra reads versions 1 and %d", path, (long long)a.i, UM_H5_VERSION);
    if (a.i != (sealed ? UM_H5_VERSION : 1))
        return um_fail(UM_EFORMAT, "%s: checkpoint version %lld %s its digest block (damaged or rewritten by another tool)", path,
                       (long long)a.i, sealed ? "with a version 2 digest block: inconsistent" : "without");
    return UM_OK;
}

/* dtype of a dataset's file type: float32 and int64 exactly (strict) or any float /
 * integer (converted); -1 otherwise. name: text for messages ("float64"). */
static int dataset_dtype(hid_t ds, int strict, char *name, size_t n) {
    hid_t type = H5Dget_type(ds);
    snprintf(name, n, "unreadable");
    if (type < 0) return -1;
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    int sign = cls == H5T_INTEGER ? H5Tget_sign(type) == H5T_SGN_2 : 1;
    H5Tclose(type);
    if (cls == H5T_NO_CLASS || size == 0) return -1;
    snprintf(name, n, "%s%zu", cls == H5T_FLOAT ? "float" : cls == H5T_INTEGER ? (sign ? "int" : "uint") : "non-numeric ", size * 8);
    if (cls == H5T_FLOAT && (!strict || size == 4)) return UM_FLOAT32;
    if (cls == H5T_INTEGER && (!strict || (size == 8 && sign))) return UM_INT64;
    return -1;
}

/* Shape of a dataset; -1 when not a scalar or a simple space of at most UM_MAXDIM dims. */
static int dataset_shape(hid_t ds, int64_t *size) {
    hid_t space = H5Dget_space(ds);
    if (space < 0) return -1;
    H5S_class_t cls = H5Sget_simple_extent_type(space);
    int nd = cls == H5S_SCALAR ? 0 : cls == H5S_SIMPLE ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t dims[H5S_MAX_RANK];
    if (nd > UM_MAXDIM) nd = -1;
    if (nd > 0 && H5Sget_simple_extent_dims(space, dims, NULL) != nd) nd = -1;
    for (int d = 0; d < nd; d++) {
        if (dims[d] > (hsize_t)INT64_MAX / 8) { nd = -1; break; }
        size[d] = (int64_t)dims[d];
    }
    H5Sclose(space);
    return nd;
}

/* Read a dataset whose dtype and shape were checked into t. A non-empty dataset with no
 * stored data (a damaged chunk index would read HDF5's fill value, zeros) is refused. */
static int read_data(hid_t ds, um_tensor *t) {
    if (um_numel(t) == 0) return 0;
    if (H5Dget_storage_size(ds) == 0) return -1;
    return H5Dread(ds, t->dtype == UM_FLOAT32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                   (char *)t->storage->data + t->offset * um_dtype_size(t->dtype));
}

/* Check one entry against the file (exists, dtype, shape). */
static int check_entry(hid_t file, const char *path, const um_h5_entry *e) {
    const char *p = *e->path == '/' ? e->path + 1 : e->path;
    char want[128], got[128], tname[32];
    int exists = um_h5_path_exists(file, p);
    if (exists != 1) return um_fail(UM_EFORMAT, "%s: no tensor %s in the checkpoint", path, p);
    hid_t ds = H5Dopen2(file, p, H5P_DEFAULT);
    if (ds < 0) return um_fail(UM_EFORMAT, "%s: %s is not a tensor (dataset) in the checkpoint", path, p);
    int64_t size[UM_MAXDIM];
    int dt = dataset_dtype(ds, 1, tname, sizeof tname), nd = dataset_shape(ds, size);
    H5Dclose(ds);
    if (dt != (int)e->tensor->dtype)
        return um_fail(UM_EFORMAT, "%s: %s has dtype %s in the checkpoint, expected %s", path, p, tname, um_dtype_name(e->tensor->dtype));
    int same = nd == e->tensor->ndim;
    for (int d = 0; same && d < nd; d++) same = size[d] == e->tensor->size[d];
    if (!same)
        return um_fail(UM_EFORMAT, "%s: %s has shape %s in the checkpoint, expected %s", path, p,
                       nd < 0 ? "(unsupported)" : um_sizes_str(nd, size, got, sizeof got), um_shape_str(e->tensor, want, sizeof want));
    return UM_OK;
}

static int load_all(hid_t file, int sealed, const char *path, int n, const um_h5_entry *e, um_tensor **tmp) {
    char why[256];
    int rc = check_format(file, path, sealed);
    for (int i = 0; i < n && !rc; i++) rc = check_entry(file, path, &e[i]);
    for (int i = 0; i < n && !rc; i++) {
        const char *p = *e[i].path == '/' ? e[i].path + 1 : e[i].path;
        if ((rc = um_tensor_new(&tmp[i], e[i].tensor->dtype, e[i].tensor->ndim, e[i].tensor->size, NULL))) break;
        hid_t ds = H5Dopen2(file, p, H5P_DEFAULT);
        if (ds < 0 || read_data(ds, tmp[i]) < 0)
            rc = um_fail(UM_EFORMAT, "%s: cannot read tensor %s (corrupt data?)%s", path, p, um_h5_reason(why, sizeof why));
        if (ds >= 0) H5Dclose(ds);
    }
    for (int i = 0; i < n && !rc; i++) rc = um_copy_(e[i].tensor, tmp[i]);
    return rc;
}

int um_h5_load(const char *path, int n, const um_h5_entry *entries) {
    um_h5_quiet q;
    um_h5_quiet_begin(&q);
    hid_t file;
    int sealed;
    int rc = open_file(&file, &sealed, path);
    if (!rc) {
        um_tensor **tmp = um_calloc(sizeof(um_tensor *) * (size_t)(n + 1));
        rc = tmp ? load_all(file, sealed, path, n, entries, tmp) : UM_ENOMEM;
        for (int i = 0; tmp && i < n; i++) um_tensor_release(tmp[i]);
        um_dealloc(tmp);
        H5Fclose(file);
    }
    um_h5_quiet_end(&q);
    return rc;
}

/* ---- um_h5_read: everything under a prefix ---- */

typedef struct {
    hid_t file;
    const char *path, *prefix, *group; /* group: path of the object whose attributes are read */
    int with_data, cap_t, cap_a, rc;
    um_h5_contents *c;
} visit_ctx;

/* Grow an array of n elements of `size` bytes to cap (copying), or fail. */
static int grow(void **arr, int n, int cap, size_t size) {
    void *g = um_calloc(size * (size_t)cap);
    if (!g) return UM_ENOMEM;
    if (n) memcpy(g, *arr, size * (size_t)n);
    um_dealloc(*arr);
    *arr = g;
    return UM_OK;
}

static herr_t visit_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    visit_ctx *v = data;
    um_h5_contents *c = v->c;
    if (c->n_attrs == v->cap_a) {
        v->cap_a = v->cap_a ? 2 * v->cap_a : 16;
        if ((v->rc = grow((void **)&c->attrs, c->n_attrs, v->cap_a, sizeof *c->attrs))) return -1;
    }
    um_h5_attr *a = &c->attrs[c->n_attrs];
    memset(a, 0, sizeof *a);
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    int r = attr < 0 ? UM_EFORMAT : read_attr(attr, a);
    if (attr >= 0) H5Aclose(attr);
    if (r < 0) {
        char why[256];
        v->rc = r == UM_ENOMEM ? r : um_fail(UM_EFORMAT, "%s: cannot read attribute %s%s%s%s", v->path, v->group,
                                             *v->group ? "/" : "", name, um_h5_reason(why, sizeof why));
        return -1;
    }
    if (r == 0) return 0;
    size_t len = strlen(v->group) + strlen(name) + 2;
    char *full = um_alloc(len);
    if (!full) {
        if (a->kind == UM_H5_STRING) um_dealloc((char *)a->s);
        v->rc = UM_ENOMEM;
        return -1;
    }
    snprintf(full, len, "%s%s%s", v->group, *v->group ? "/" : "", name);
    a->name = full;
    c->n_attrs++;
    return 0;
}

static int matches(const char *name, const char *prefix) {
    size_t n = prefix ? strlen(prefix) : 0;
    return n == 0 || (strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '/'));
}

static int add_dataset(visit_ctx *v, hid_t ds, const char *name) {
    um_h5_contents *c = v->c;
    char tname[32], why[256];
    if (c->n_tensors == v->cap_t) {
        int n = c->n_tensors, cap = v->cap_t = v->cap_t ? 2 * v->cap_t : 32;
        if (grow((void **)&c->names, n, cap, sizeof *c->names) || grow((void **)&c->tensors, n, cap, sizeof *c->tensors) ||
            grow((void **)&c->dtypes, n, cap, sizeof *c->dtypes) || grow((void **)&c->ndims, n, cap, sizeof *c->ndims) ||
            grow((void **)&c->sizes, n, cap, sizeof *c->sizes))
            return UM_ENOMEM;
    }
    int i = c->n_tensors;
    int dt = dataset_dtype(ds, 0, tname, sizeof tname), nd = dataset_shape(ds, c->sizes[i]);
    if (dt < 0) return um_fail(UM_EFORMAT, "%s: dataset %s has type %s, expected numbers", v->path, name, tname);
    if (nd < 0) return um_fail(UM_EFORMAT, "%s: dataset %s is not a scalar or an array of at most %d dimensions", v->path, name, UM_MAXDIM);
    if (!(c->names[i] = um_h5_strdup(name))) return UM_ENOMEM;
    c->dtypes[i] = dt;
    c->ndims[i] = nd;
    c->n_tensors++;
    if (!v->with_data) return UM_OK;
    int rc = um_tensor_new(&c->tensors[i], (um_dtype)dt, nd, c->sizes[i], NULL);
    if (!rc && read_data(ds, c->tensors[i]) < 0)
        rc = um_fail(UM_EFORMAT, "%s: cannot read tensor %s (corrupt data?)%s", v->path, name, um_h5_reason(why, sizeof why));
    return rc;
}

static herr_t visit_link(hid_t root, const char *name, const H5L_info_t *info, void *data) {
    visit_ctx *v = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
    if (obj < 0) {
        char why[256];
        v->rc = um_fail(UM_EFORMAT, "%s: cannot open %s%s", v->path, name, um_h5_reason(why, sizeof why));
        return -1;
    }
    H5I_type_t type = H5Iget_type(obj);
    if (type == H5I_DATASET && matches(name, v->prefix)) v->rc = add_dataset(v, obj, name);
    else if (type == H5I_GROUP) {
        v->group = name;
        hsize_t idx = 0;
        if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_attr, v) < 0 && !v->rc) {
            char why[256];
            v->rc = um_fail(UM_EFORMAT, "%s: cannot list the attributes of %s (corrupt file?)%s", v->path, name, um_h5_reason(why, sizeof why));
        }
    } else if (type != H5I_DATASET) {
        v->rc = um_fail(UM_EFORMAT, "%s: %s is neither a group nor a dataset (corrupt file?)", v->path, name);
    }
    H5Oclose(obj);
    return v->rc ? -1 : 0;
}

void um_h5_contents_free(um_h5_contents *c) {
    if (!c) return;
    for (int i = 0; i < c->n_tensors; i++) {
        um_dealloc(c->names[i]);
        um_tensor_release(c->tensors[i]);
    }
    for (int i = 0; i < c->n_attrs; i++) {
        um_dealloc((char *)c->attrs[i].name);
        if (c->attrs[i].kind == UM_H5_STRING) um_dealloc((char *)c->attrs[i].s);
    }
    um_dealloc(c->names);
    um_dealloc(c->tensors);
    um_dealloc(c->dtypes);
    um_dealloc(c->ndims);
    um_dealloc(c->sizes);
    um_dealloc(c->attrs);
    um_dealloc(c);
}

const um_h5_attr *um_h5_find_attr(const um_h5_contents *c, const char *name) {
    for (int i = 0; i < c->n_attrs; i++)
        if (strcmp(c->attrs[i].name, name) == 0) return &c->attrs[i];
    return NULL;
}

int um_h5_read(um_h5_contents **out, const char *path, const char *prefix, int with_data, int check) {
    um_h5_quiet q;
    um_h5_quiet_begin(&q);
    hid_t file;
    int sealed;
    int rc = open_file(&file, &sealed, path);
    if (rc) { um_h5_quiet_end(&q); return rc; }
    visit_ctx v = {.file = file, .path = path, .prefix = prefix, .group = "", .with_data = with_data};
    if (check) rc = check_format(file, path, sealed);
    if (!rc && !(v.c = um_calloc(sizeof *v.c))) rc = UM_ENOMEM;
    if (!rc) {
        hsize_t idx = 0;
        char why[256];
        if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_attr, &v) < 0 && !(rc = v.rc))
            rc = um_fail(UM_EFORMAT, "%s: cannot list the root attributes (corrupt file?)%s", path, um_h5_reason(why, sizeof why));
        if (!rc && !(rc = v.rc) && H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &v) < 0 && !(rc = v.rc))
            rc = um_fail(UM_EFORMAT, "%s: cannot list the contents (corrupt file?)%s", path, um_h5_reason(why, sizeof why));
    }
    H5Fclose(file);
    um_h5_quiet_end(&q);
    if (rc) um_h5_contents_free(v.c);
    else *out = v.c;
    return rc;
}
