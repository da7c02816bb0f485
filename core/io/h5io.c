/* Writing HDF5 checkpoints (see h5io.h): validate every name first, write everything to
 * "<path>.tmp.<pid>", flush and fsync it, then rename over path and fsync the folder, so
 * a crash leaves either the old checkpoint or the new one, never half of one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "io/h5io.h"
#include "io/h5io_util.h"

static int bad_path(const char *p) {
    if (*p == '/') p++;
    size_t n = strlen(p);
    return n == 0 || p[n - 1] == '/' || strstr(p, "//") != NULL || n > 900;
}

static const char *strip(const char *p) { return *p == '/' ? p + 1 : p; }

static int validate(int n, const um_h5_entry *e, int nattr, const um_h5_attr *a) {
    for (int i = 0; i < n; i++) {
        if (!e[i].path || bad_path(e[i].path) || !e[i].tensor)
            return um_fail(UM_EINVAL, "checkpoint save: entry %d has an empty or malformed path ('%s') or no tensor", i + 1, e[i].path ? e[i].path : "");
        if (e[i].tensor->dtype != UM_FLOAT32 && e[i].tensor->dtype != UM_INT64)
            return um_fail(UM_EINVAL, "checkpoint save: %s has dtype %s, expected float32 or int64", e[i].path, um_dtype_name(e[i].tensor->dtype));
        for (int j = 0; j < i; j++)
            if (strcmp(strip(e[i].path), strip(e[j].path)) == 0)
                return um_fail(UM_EINVAL, "checkpoint save: tensor path %s given twice", e[i].path);
    }
    for (int i = 0; i < nattr; i++) {
        const char *name = a[i].name;
        if (!name || bad_path(name) || (a[i].kind == UM_H5_STRING && !a[i].s))
            return um_fail(UM_EINVAL, "checkpoint save: attribute %d has an empty or malformed name or no value", i + 1);
        if (!strcmp(strip(name), "format") || !strcmp(strip(name), "version") || !strcmp(strip(name), "layout"))
            return um_fail(UM_EINVAL, "checkpoint save: attribute name '%s' is reserved", name);
        for (int j = 0; j < i; j++)
            if (strcmp(strip(name), strip(a[j].name)) == 0)
                return um_fail(UM_EINVAL, "checkpoint save: attribute %s given twice", name);
    }
    return UM_OK;
}

/* The group at gpath (created with its parents when missing). */
static hid_t open_group(hid_t file, const char *gpath) {
    if (!*gpath) return H5Gopen2(file, "/", H5P_DEFAULT);
    if (um_h5_path_exists(file, gpath) == 1) return H5Gopen2(file, gpath, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, gpath, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

static int write_attr(hid_t file, const um_h5_attr *a, const char *path) {
    char gpath[1024], why[256];
    const char *name = strip(a->name), *slash = strrchr(name, '/');
    size_t glen = slash ? (size_t)(slash - name) : 0;
    memcpy(gpath, name, glen);
    gpath[glen] = '\0';
    hid_t obj = open_group(file, gpath), type = -1, space = H5Screate(H5S_SCALAR), attr = -1;
    herr_t st = -1;
    if (obj >= 0) {
        if (a->kind == UM_H5_STRING) {
            type = H5Tcopy(H5T_C_S1);
            H5Tset_size(type, H5T_VARIABLE);
            H5Tset_cset(type, H5T_CSET_UTF8);
        } else {
            type = H5Tcopy(a->kind == UM_H5_INT ? H5T_STD_I64LE : H5T_IEEE_F64LE);
        }
        attr = H5Acreate2(obj, slash ? slash + 1 : name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr >= 0) {
            if (a->kind == UM_H5_STRING) st = H5Awrite(attr, type, &a->s);
            else if (a->kind == UM_H5_INT) st = H5Awrite(attr, H5T_NATIVE_INT64, &a->i);
            else st = H5Awrite(attr, H5T_NATIVE_DOUBLE, &a->d);
        }
    }
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    H5Sclose(space);
    if (obj >= 0) H5Gclose(obj);
    return st < 0 ? um_fail(UM_EIO, "%s: cannot write attribute %s%s", path, a->name, um_h5_reason(why, sizeof why)) : UM_OK;
}

/* t as a contiguous host tensor: a new reference to t itself or to a copy. */
static int host_contiguous(um_tensor **out, um_tensor *t) {
    um_tensor *c;
    int rc = um_contiguous(&c, t);
    if (rc) return rc;
    if (um_backend_of(c)->is_host) { *out = c; return UM_OK; }
    rc = um_to_backend(out, c, um_cpu_backend());
    um_tensor_release(c);
    return rc;
}

static int write_tensor(hid_t file, hid_t lcpl, const um_h5_entry *e, const char *path) {
    um_tensor *t;
    char why[256];
    int rc = host_contiguous(&t, e->tensor);
    if (rc) return rc;
    hsize_t dims[UM_MAXDIM];
    for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->size[d];
    hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    size_t bytes = (size_t)um_numel(t) * um_dtype_size(t->dtype);
    if (t->ndim >= 1 && bytes > 0 && bytes < ((size_t)1 << 30)) {
        /* one chunk holding the whole tensor, so that Fletcher-32 covers it */
        H5Pset_chunk(dcpl, t->ndim, dims);
        H5Pset_fletcher32(dcpl);
    }
    int f32 = t->dtype == UM_FLOAT32;
    hid_t ds = H5Dcreate2(file, strip(e->path), f32 ? H5T_IEEE_F32LE : H5T_STD_I64LE, space, lcpl, dcpl, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : bytes == 0 ? 0 : H5Dwrite(ds, f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->storage->data ? (const char *)t->storage->data + t->offset * um_dtype_size(t->dtype) : NULL);
    if (st < 0) rc = um_fail(UM_EIO, "%s: cannot write tensor %s%s", path, e->path, um_h5_reason(why, sizeof why));
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    um_tensor_release(t);
    return rc;
}

static int write_file(hid_t file, const char *path, int n, const um_h5_entry *e, int nattr, const um_h5_attr *a) {
    const um_h5_attr fixed[] = {{"format", UM_H5_STRING, UM_H5_FORMAT, 0, 0},
                                {"version", UM_H5_INT, NULL, UM_H5_VERSION, 0},
                                {"layout", UM_H5_STRING, "NCHW", 0, 0}};
    int rc = UM_OK;
    for (int i = 0; i < 3 && !rc; i++) rc = write_attr(file, &fixed[i], path);
    for (int i = 0; i < nattr && !rc; i++) rc = write_attr(file, &a[i], path);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    for (int i = 0; i < n && !rc; i++) rc = write_tensor(file, lcpl, &e[i], path);
    H5Pclose(lcpl);
    return rc;
}

static int fsync_path(const char *p, int directory) {
    int fd = open(p, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int um_h5_save(const char *path, int n, const um_h5_entry *entries, int nattr, const um_h5_attr *attrs) {
    int rc = validate(n, entries, nattr, attrs);
    if (rc) return rc;
    size_t plen = strlen(path) + 32;
    char *tmp = um_alloc(plen), *dir = um_alloc(plen), why[256];
    if (!tmp || !dir) { um_dealloc(tmp); um_dealloc(dir); return UM_ENOMEM; }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    um_h5_quiet q;
    um_h5_quiet_begin(&q);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        rc = um_fail(UM_EIO, "%s: cannot create the checkpoint file%s", tmp, um_h5_reason(why, sizeof why));
    } else {
        rc = write_file(file, path, n, entries, nattr, attrs);
        if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 && !rc) rc = um_fail(UM_EIO, "%s: cannot flush%s", tmp, um_h5_reason(why, sizeof why));
        if (H5Fclose(file) < 0 && !rc) rc = um_fail(UM_EIO, "%s: cannot close%s", tmp, um_h5_reason(why, sizeof why));
        if (!rc && fsync_path(tmp, 0) != 0) rc = um_fail(UM_EIO, "%s: fsync failed (%s)", tmp, strerror(errno));
        if (!rc && rename(tmp, path) != 0) rc = um_fail(UM_EIO, "%s: cannot rename %s to it (%s)", path, tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    um_h5_quiet_end(&q);
    if (!rc) {
        /* make the rename itself durable */
        snprintf(dir, plen, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
        else snprintf(dir, plen, ".");
        fsync_path(dir, 1);
    }
    um_dealloc(tmp);
    um_dealloc(dir);
    return rc;
}
