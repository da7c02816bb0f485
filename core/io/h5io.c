/* Writing HDF5 checkpoints (see h5io.h): validate every name first, build the file in
 * memory with its digest block (h5io_seal.h), write it to "<path>.tmp.<pid>" and fsync it,
 * then rename over path and fsync the folder, so a crash or a full disk leaves either the
 * old checkpoint or the new one, never half of one. */
#include <errno.h>
#include <fcntl.h>
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
    if (lcpl < 0) return -1;
    hid_t g = H5Pset_create_intermediate_group(lcpl, 1) < 0 ? -1 : H5Gcreate2(file, gpath, lcpl, H5P_DEFAULT, H5P_DEFAULT);
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
        type = H5Tcopy(a->kind == UM_H5_STRING ? H5T_C_S1 : a->kind == UM_H5_INT ? H5T_STD_I64LE : H5T_IEEE_F64LE);
        if (a->kind == UM_H5_STRING && type >= 0 && (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0)) {
            H5Tclose(type);
            type = -1;
        }
        if (type >= 0 && space >= 0) attr = H5Acreate2(obj, slash ? slash + 1 : name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr >= 0) {
            if (a->kind == UM_H5_STRING) st = H5Awrite(attr, type, &a->s);
            else if (a->kind == UM_H5_INT) st = H5Awrite(attr, H5T_NATIVE_INT64, &a->i);
            else st = H5Awrite(attr, H5T_NATIVE_DOUBLE, &a->d);
        }
    }
    if (attr >= 0 && H5Aclose(attr) < 0) st = -1;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
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
    int ready = space >= 0 && dcpl >= 0;
    if (ready && t->ndim >= 1 && bytes > 0 && bytes < ((size_t)1 << 30))
        /* one chunk holding the whole tensor, so that Fletcher-32 covers it */
        ready = H5Pset_chunk(dcpl, t->ndim, dims) >= 0 && H5Pset_fletcher32(dcpl) >= 0;
    int f32 = t->dtype == UM_FLOAT32;
    hid_t ds = !ready ? -1 : H5Dcreate2(file, strip(e->path), f32 ? H5T_IEEE_F32LE : H5T_STD_I64LE, space, lcpl, dcpl, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : bytes == 0 ? 0 : H5Dwrite(ds, f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->storage->data ? (const char *)t->storage->data + t->offset * um_dtype_size(t->dtype) : NULL);
    if (st < 0) rc = um_fail(UM_EIO, "%s: cannot write tensor %s%s", path, e->path, um_h5_reason(why, sizeof why));
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = um_fail(UM_EIO, "%s: cannot close tensor %s%s", path, e->path, um_h5_reason(why, sizeof why));
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
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
    if (!rc && (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)) rc = um_fail(UM_EIO, "%s: HDF5 property list failed", path);
    for (int i = 0; i < n && !rc; i++) rc = write_tensor(file, lcpl, &e[i], path);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

static int fsync_path(const char *p, int directory) {
    int fd = open(p, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* The whole file, built in memory by HDF5's core driver (nothing touches the disk, so a
 * full disk can never leave HDF5 with a half-closed file), as an um_alloc'ed image with
 * the digest block filled in. Every HDF5 object is closed whatever fails. */
static int build_image(uint8_t **out, size_t *len, const char *path, int n, const um_h5_entry *e, int nattr, const um_h5_attr *a) {
    char why[256];
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE), file = -1;
    int rc = UM_OK;
    /* V18 and later: version 2 superblock and object headers, whose metadata carry checksums */
    if (fapl < 0 || fcpl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
        H5Pset_userblock(fcpl, UM_H5_SEAL_BYTES) < 0 || (file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
        rc = um_fail(UM_EIO, "%s: cannot create the checkpoint in memory%s", path, um_h5_reason(why, sizeof why));
    if (!rc) rc = write_file(file, path, n, e, nattr, a);
    ssize_t size = -1;
    if (!rc && (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0 || (size = H5Fget_file_image(file, NULL, 0)) <= 0))
        rc = um_fail(UM_EIO, "%s: cannot build the file image%s", path, um_h5_reason(why, sizeof why));
    /* the image HDF5 returns starts at its superblock, without the user block before it */
    if (!rc && !(*out = um_calloc((size_t)size + UM_H5_SEAL_BYTES))) rc = UM_ENOMEM;
    if (!rc && H5Fget_file_image(file, *out + UM_H5_SEAL_BYTES, (size_t)size) != size) {
        rc = um_fail(UM_EIO, "%s: cannot copy the file image%s", path, um_h5_reason(why, sizeof why));
        um_dealloc(*out);
    }
    if (file >= 0 && H5Fclose(file) < 0 && !rc) {
        rc = um_fail(UM_EIO, "%s: cannot close the in-memory file%s", path, um_h5_reason(why, sizeof why));
        um_dealloc(*out);
    }
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    if (!rc && um_h5_fix_superblock(*out + UM_H5_SEAL_BYTES, (size_t)size) != 0) {
        rc = um_fail(UM_EIO, "%s: HDF5 built an image with an unexpected superblock", path);
        um_dealloc(*out);
    }
    if (rc) return rc;
    *len = (size_t)size + UM_H5_SEAL_BYTES;
    um_h5_seal_image(*out, *len);
    return UM_OK;
}

/* Write the image to tmp (created anew), fsync it; errno in the message on failure. */
static int write_image(const char *tmp, const uint8_t *image, size_t len) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return um_fail(UM_EIO, "%s: cannot create the checkpoint file (%s)", tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, image + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = w < 0 ? errno : ENOSPC;
            close(fd);
            return um_fail(UM_EIO, "%s: cannot write the checkpoint (%s)", tmp, strerror(err));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return um_fail(UM_EIO, "%s: fsync failed (%s)", tmp, strerror(err));
    }
    if (close(fd) != 0) return um_fail(UM_EIO, "%s: close failed (%s)", tmp, strerror(errno));
    return UM_OK;
}

int um_h5_save(const char *path, int n, const um_h5_entry *entries, int nattr, const um_h5_attr *attrs) {
    int rc = validate(n, entries, nattr, attrs);
    if (rc) return rc;
    size_t plen = strlen(path) + 32, len = 0;
    char *tmp = um_alloc(plen), *dir = um_alloc(plen);
    uint8_t *image = NULL;
    if (!tmp || !dir) { um_dealloc(tmp); um_dealloc(dir); return UM_ENOMEM; }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    um_h5_quiet q;
    um_h5_quiet_begin(&q);
    rc = build_image(&image, &len, path, n, entries, nattr, attrs);
    um_h5_quiet_end(&q);
    if (!rc) {
        rc = write_image(tmp, image, len);
        if (!rc && rename(tmp, path) != 0) rc = um_fail(UM_EIO, "%s: cannot rename %s to it (%s)", path, tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    um_dealloc(image);
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
