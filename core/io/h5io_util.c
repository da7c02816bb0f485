/* Helpers of the HDF5 checkpoint code (see h5io_util.h). The innermost entry of the
 * HDF5 error stack usually says what is wrong with a file ("truncated file: eof = ...",
 * "file signature not found"), so that is the one quoted in our messages. */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "error.h"
#include "io/h5io_util.h"

void um_h5_quiet_begin(um_h5_quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void um_h5_quiet_end(const um_h5_quiet *q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct { char *buf; size_t n; } reason_buf;

/* Walking upward, entry 0 is the innermost error: the cause rather than the API call. */
static herr_t take_innermost(unsigned n, const H5E_error2_t *err, void *data) {
    reason_buf *r = data;
    if (n == 0 && err->desc) snprintf(r->buf, r->n, "; HDF5: %s", err->desc);
    return 0;
}

const char *um_h5_reason(char *buf, size_t n) {
    reason_buf r = {buf, n};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &r);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

char *um_h5_strdup(const char *s) {
    size_t len = strlen(s) + 1;
    char *c = um_alloc(len);
    if (c) memcpy(c, s, len);
    return c;
}

int um_h5_path_exists(hid_t loc, const char *path) {
    char part[1024];
    size_t len = strlen(path);
    if (len >= sizeof part) return -1;
    for (size_t i = 0; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        if (i == 0) continue;
        memcpy(part, path, i);
        part[i] = '\0';
        htri_t e = H5Lexists(loc, part, H5P_DEFAULT);
        if (e <= 0) return (int)e;
        if (path[i] == '\0') return 1;
        /* an intermediate component must be a group to look inside it */
        hid_t obj = H5Oopen(loc, part, H5P_DEFAULT);
        if (obj < 0) return -1;
        int is_group = H5Iget_type(obj) == H5I_GROUP;
        H5Oclose(obj);
        if (!is_group) return 0;
    }
    return 1;
}
