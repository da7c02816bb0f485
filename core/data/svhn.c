/* SVHN cropped digits (.mat from ufldl.stanford.edu, read with libmatio): X is a
 * 32x32x3xN uint8 array in MATLAB's column-major order (row, column, channel, image),
 * y an N-vector of labels 1..10 where 10 stands for the digit 0. matio's own log lines
 * are caught so that its reason ends up in our message instead of on stderr. */
#include <math.h>
#include <matio.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "data/data.h"
#include "error.h"

static _Thread_local char matio_message[256];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void catch_log(int level, char *message) {
    (void)level;
    snprintf(matio_message, sizeof matio_message, "%s", message ? message : "");
}

static void install_log(void) { Mat_LogInitFunc("umbra", catch_log); }

/* " (matio: <reason>)" when matio said something, else "". */
static const char *matio_reason(char *buf, size_t n) {
    if (matio_message[0]) snprintf(buf, n, " (matio: %s)", matio_message);
    else buf[0] = '\0';
    return buf;
}

static int label_at(const matvar_t *y, size_t i, double *v) {
    switch (y->class_type) {
    case MAT_C_DOUBLE: *v = ((const double *)y->data)[i]; return 1;
    case MAT_C_SINGLE: *v = ((const float *)y->data)[i]; return 1;
    case MAT_C_UINT8: *v = ((const uint8_t *)y->data)[i]; return 1;
    case MAT_C_INT8: *v = ((const int8_t *)y->data)[i]; return 1;
    case MAT_C_UINT16: *v = ((const uint16_t *)y->data)[i]; return 1;
    case MAT_C_INT16: *v = ((const int16_t *)y->data)[i]; return 1;
    case MAT_C_UINT32: *v = ((const uint32_t *)y->data)[i]; return 1;
    case MAT_C_INT32: *v = ((const int32_t *)y->data)[i]; return 1;
    case MAT_C_INT64: *v = (double)((const int64_t *)y->data)[i]; return 1;
    case MAT_C_UINT64: *v = (double)((const uint64_t *)y->data)[i]; return 1;
    default: return 0;
    }
}

/* "32x32x3x100 uint8" style description of a variable. */
static const char *describe(const matvar_t *v, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < v->rank && used + 24 < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? "x%zu" : "%zu", v->dims[d]);
    snprintf(buf + used, n - used, " %s%s", v->class_type == MAT_C_UINT8 ? "uint8" : v->class_type == MAT_C_DOUBLE ? "double" : "non-uint8",
             v->isComplex ? " complex" : "");
    return buf;
}

static int check_vars(const char *path, const matvar_t *x, const matvar_t *y, size_t *n) {
    char got[160];
    if (x->rank != 4 || x->dims[0] != 32 || x->dims[1] != 32 || x->dims[2] != 3 || x->class_type != MAT_C_UINT8 || x->isComplex)
        return um_fail(UM_EFORMAT, "%s: expected X to be a real 32x32x3xN uint8 array, found %s", path, describe(x, got, sizeof got));
    *n = x->dims[3];
    size_t ny = y->rank == 2 ? y->dims[0] * y->dims[1] : 0;
    if (y->rank != 2 || (y->dims[0] != 1 && y->dims[1] != 1) || ny != *n || y->isComplex || !y->data)
        return um_fail(UM_EFORMAT, "%s: expected y to be a real %zux1 vector (one label per image of X), found rank %d with %zu elements",
                       path, *n, y->rank, ny);
    if (!x->data || x->nbytes != *n * 3072)
        return um_fail(UM_EFORMAT, "%s: X holds %zu bytes, expected %zu (truncated?)", path, x->data ? x->nbytes : 0, *n * 3072);
    return UM_OK;
}

static int fill(um_dataset *ds, const char *path, const matvar_t *x, const matvar_t *y) {
    const uint8_t *src = x->data;
    for (int64_t i = 0; i < ds->n; i++) {
        double v;
        if (!label_at(y, (size_t)i, &v))
            return um_fail(UM_EFORMAT, "%s: y has an unsupported class %d, expected a numeric array", path, (int)y->class_type);
        /* the range first: converting a double outside int's range (or NaN) is undefined */
        if (!(v >= 1 && v <= 10) || v != (double)(int)v)
            return um_fail(UM_EFORMAT, "%s: label %g of image %lld outside 1..10", path, v, (long long)i + 1);
        ds->labels[i] = (int64_t)v % 10;
        uint8_t *dst = ds->pixels + (size_t)i * 3072;
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 32; r++)
                for (int c = 0; c < 32; c++)
                    dst[ch * 1024 + r * 32 + c] = src[(size_t)i * 3072 + ch * 1024 + c * 32 + r];
    }
    return UM_OK;
}

/* Before matio allocates what variable var declares (a damaged header could ask for
 * hundreds of GB): its size must fit in the file, allowing for deflate's largest ratio
 * (1032:1) since v5 variables and v7.3 datasets may be compressed. A variable matio
 * cannot describe is left to Mat_VarRead, which names the failure. */
static int check_declared(const char *path, mat_t *mat, const char *var, int64_t file_size) {
    matvar_t *info = Mat_VarReadInfo(mat, var);
    if (!info) return UM_OK;
    size_t elems = 1;
    int overflow = 0;
    for (int d = 0; d < info->rank; d++)
        if (info->dims[d] && elems > SIZE_MAX / info->dims[d]) overflow = 1;
        else elems *= info->dims[d];
    size_t elem = Mat_SizeOfClass(info->class_type) * (info->isComplex ? 2 : 1);
    if (elem && elems > SIZE_MAX / elem) overflow = 1;
    double bytes = (double)elems * (double)elem;
    char got[160];
    describe(info, got, sizeof got);
    Mat_VarFree(info);
    if (overflow || bytes > 1032.0 * (double)file_size + 4096)
        return um_fail(UM_EFORMAT, "%s: variable %s declares %s (%.0f bytes), more than a %lld-byte file can hold even compressed",
                       path, var, got, overflow ? INFINITY : bytes, (long long)file_size);
    return UM_OK;
}

int um_read_svhn(um_dataset **out, const char *path, const char *name) {
    pthread_once(&log_once, install_log);
    matio_message[0] = '\0';
    char why[300];
    FILE *probe = fopen(path, "rb");
    if (!probe) return um_fail(UM_EIO, "%s: cannot open", path);
    struct stat st;
    int64_t file_size = fstat(fileno(probe), &st) == 0 ? (int64_t)st.st_size : 0;
    fclose(probe);
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat) return um_fail(UM_EFORMAT, "%s: not a MATLAB .mat file%s", path, matio_reason(why, sizeof why));
    int rc = check_declared(path, mat, "X", file_size);
    if (!rc) rc = check_declared(path, mat, "y", file_size);
    if (rc) { Mat_Close(mat); return rc; }
    matvar_t *x = Mat_VarRead(mat, "X"), *y = x ? Mat_VarRead(mat, "y") : NULL;
    um_dataset *ds = NULL;
    size_t n = 0;
    if (!x || !y)
        rc = um_fail(UM_EFORMAT, "%s: expected variables X and y (SVHN cropped digits); could not read %s: missing, truncated or corrupt%s",
                     path, x ? "y" : "X", matio_reason(why, sizeof why));
    else if (!(rc = check_vars(path, x, y, &n)) && !(rc = um_dataset_new(&ds, name, (int64_t)n, 3, 32, 32, 10)))
        rc = fill(ds, path, x, y);
    Mat_VarFree(x);
    Mat_VarFree(y);
    Mat_Close(mat);
    if (rc) um_dataset_free(ds);
    else *out = ds;
    return rc;
}
