/* CIFAR-10 and CIFAR-100 "binary version" files, gzip or plain: fixed records of label
 * byte(s) and 3072 pixels (1024 red, 1024 green, 1024 blue, each 32x32 row-major, which is
 * already CHW). Record counts come from the caller or from the file size / gzip trailer,
 * and the stream must end exactly after the last record. */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "data/data.h"
#include "data/file_io.h"
#include "error.h"

#define CIFAR_PIXELS 3072
#define CIFAR_CHUNK 1024 /* records read at a time */

/* The number of records of file `path`: `expected` when given (checked against the size of
 * a plain file), else the uncompressed size divided by the record size. */
static int count_records(const char *path, int64_t expected, int64_t record, int64_t *count) {
    int64_t size;
    int gz;
    int rc = um_dio_size(path, &size, &gz);
    if (rc) return rc;
    if (expected > 0) {
        if (gz ? (uint32_t)size != (uint32_t)(expected * record) : size != expected * record)
            return um_fail(UM_EFORMAT, "%s: expected %lld records of %lld bytes (%lld bytes), found %lld bytes", path,
                           (long long)expected, (long long)record, (long long)(expected * record), (long long)size);   /* gzip: its trailer's length modulo 2^32 */
        *count = expected;
        return UM_OK;
    }
    if (size == 0 || size % record)
        return um_fail(UM_EFORMAT, "%s: expected a whole number of %lld-byte records, found %lld bytes%s", path,
                       (long long)record, (long long)size, gz ? " (uncompressed size from the gzip trailer)" : "");
    *count = size / record;
    return UM_OK;
}

static int read_file(um_dataset *ds, int64_t first, int64_t count, const char *path, int label_bytes, uint8_t *buf) {
    gzFile f;
    const int64_t record = label_bytes + CIFAR_PIXELS;
    int rc = um_dio_open(&f, path);
    if (rc) return rc;
    char what[96];
    for (int64_t done = 0; done < count && !rc; done += CIFAR_CHUNK) {
        int64_t k = count - done < CIFAR_CHUNK ? count - done : CIFAR_CHUNK;
        snprintf(what, sizeof what, "records %lld..%lld of %lld (%lld bytes each)", (long long)done + 1,
                 (long long)(done + k), (long long)count, (long long)record);
        if ((rc = um_dio_read(f, path, buf, k * record, done * record, what))) break;
        for (int64_t i = 0; i < k; i++) {
            const uint8_t *r = buf + i * record;
            int label = r[label_bytes - 1]; /* CIFAR-100: coarse, then fine; keep fine */
            if (label >= ds->num_classes) {
                rc = um_fail(UM_EFORMAT, "%s: record %lld has label %d, expected 0..%d", path, (long long)(done + i + 1),
                             label, ds->num_classes - 1);
                break;
            }
            ds->labels[first + done + i] = label;
            memcpy(ds->pixels + (size_t)(first + done + i) * CIFAR_PIXELS, r + label_bytes, CIFAR_PIXELS);
        }
    }
    if (!rc) {
        snprintf(what, sizeof what, "%lld records of %lld bytes", (long long)count, (long long)record);
        rc = um_dio_expect_end(f, path, count * record, what);
    }
    gzclose(f);
    return rc;
}

int um_read_cifar(um_dataset **out, int nfiles, const char *const *paths, const int64_t *records,
                  int label_bytes, int num_classes, const char *name) {
    if (nfiles < 1 || nfiles > 64 || (label_bytes != 1 && label_bytes != 2) || num_classes < 1 || num_classes > 256)
        return um_fail(UM_EINVAL, "read_cifar: need 1..64 files, 1 or 2 label bytes and 1..256 classes");
    int64_t counts[64], total = 0;
    for (int i = 0; i < nfiles; i++) {
        int rc = count_records(paths[i], records ? records[i] : 0, label_bytes + CIFAR_PIXELS, &counts[i]);
        if (rc) return rc;
        total += counts[i];
    }
    um_dataset *ds = NULL;
    uint8_t *buf = NULL;
    int rc = um_dataset_new(&ds, name, total, 3, 32, 32, num_classes);
    if (!rc && !(buf = um_alloc((size_t)CIFAR_CHUNK * (label_bytes + CIFAR_PIXELS)))) rc = UM_ENOMEM;
    int64_t first = 0;
    for (int i = 0; i < nfiles && !rc; first += counts[i], i++)
        rc = read_file(ds, first, counts[i], paths[i], label_bytes, buf);
    um_dealloc(buf);
    if (rc) um_dataset_free(ds);
    else *out = ds;
    return rc;
}
