/* MNIST-style IDX files (MNIST, Fashion-MNIST, EMNIST), gzip or plain: a pair of an
 * idx3 image file (magic 0x00000803, count, rows, cols, pixels) and an idx1 label file
 * (magic 0x00000801, count, labels). Every header field, the counts of both files, the
 * label range and the exact stream length are checked before the data set is handed out. */
#include <stdio.h>
#include <string.h>
#include "alloc.h"
#include "data/data.h"
#include "data/file_io.h"
#include "error.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_COUNT 100000000u
#define IDX_MAX_SIDE 4096u

static int read_header(gzFile f, const char *path, uint32_t magic, int nfields, uint32_t *fields) {
    unsigned char head[16];
    int images = magic == IDX_IMAGES_MAGIC;
    /* the magic number alone first, so that a wrong file is named as such even if short */
    int rc = um_dio_read(f, path, head, 4, 0, images ? "an idx3 header" : "an idx1 header");
    if (!rc && um_dio_be32(head) != magic)
        rc = um_fail(UM_EFORMAT, "%s: not an IDX %s file: expected magic number 0x%08x, found 0x%08x", path,
                     images ? "image (idx3 ubyte)" : "label (idx1 ubyte)", magic, um_dio_be32(head));
    if (!rc) rc = um_dio_read(f, path, head + 4, 4 * (int64_t)(nfields - 1), 4, images ? "an idx3 header" : "an idx1 header");
    if (rc) return rc;
    for (int i = 0; i < nfields; i++) fields[i] = um_dio_be32(head + 4 * i);
    if (fields[1] > IDX_MAX_COUNT)
        return um_fail(UM_EFORMAT, "%s: implausible count %u in the header (at most %u)", path, fields[1], IDX_MAX_COUNT);
    return UM_OK;
}

static void transpose_images(uint8_t *pixels, int64_t n, int side) {
    for (int64_t i = 0; i < n; i++) {
        uint8_t *img = pixels + (size_t)i * side * side;
        for (int r = 0; r < side; r++)
            for (int c = r + 1; c < side; c++) {
                uint8_t t = img[r * side + c];
                img[r * side + c] = img[c * side + r];
                img[c * side + r] = t;
            }
    }
}

/* Labels from the idx1 file into ds->labels, shifted by label_min and range-checked. */
static int read_labels(um_dataset *ds, const char *path, int label_min) {
    gzFile f;
    uint32_t head[2];
    uint8_t *raw = NULL;
    int rc = um_dio_open(&f, path);
    if (rc) return rc;
    if ((rc = read_header(f, path, IDX_LABELS_MAGIC, 2, head))) goto done;
    if ((int64_t)head[1] != ds->n) {
        rc = um_fail(UM_EFORMAT, "%s: expected %lld labels (as many as images), the header says %u", path, (long long)ds->n, head[1]);
        goto done;
    }
    char what[64];
    snprintf(what, sizeof what, "%lld labels", (long long)ds->n);
    if ((rc = um_dio_check_declared(path, 8 + ds->n, what))) goto done;
    if (!(raw = um_alloc((size_t)ds->n + 1))) { rc = um_dio_no_memory(path, what, ds->n); goto done; }
    if ((rc = um_dio_read(f, path, raw, ds->n, 8, what))) goto done;
    if ((rc = um_dio_expect_end(f, path, 8 + ds->n, what))) goto done;
    for (int64_t i = 0; i < ds->n; i++) {
        int v = raw[i];
        if (v < label_min || v >= label_min + ds->num_classes) {
            rc = um_fail(UM_EFORMAT, "%s: label %d of image %lld outside %d..%d", path, v, (long long)i, label_min,
                         label_min + ds->num_classes - 1);
            goto done;
        }
        ds->labels[i] = v - label_min;
    }
done:
    um_dealloc(raw);
    gzclose(f);
    return rc;
}

int um_read_idx(um_dataset **out, const char *images_path, const char *labels_path,
                const char *name, int transpose, int label_min, int num_classes) {
    if (num_classes < 1 || num_classes > 256 || label_min < 0 || label_min + num_classes > 256)
        return um_fail(UM_EINVAL, "read_idx: labels %d..%d do not fit in a byte", label_min, label_min + num_classes - 1);
    gzFile f;
    uint32_t head[4];
    um_dataset *ds = NULL;
    int rc = um_dio_open(&f, images_path);
    if (rc) return rc;
    if ((rc = read_header(f, images_path, IDX_IMAGES_MAGIC, 4, head))) goto done;
    if (head[2] < 1 || head[3] < 1 || head[2] > IDX_MAX_SIDE || head[3] > IDX_MAX_SIDE) {
        rc = um_fail(UM_EFORMAT, "%s: implausible image size %ux%u in the header", images_path, head[2], head[3]);
        goto done;
    }
    if (transpose && head[2] != head[3]) {
        rc = um_fail(UM_EFORMAT, "%s: expected square images to transpose, found %ux%u", images_path, head[2], head[3]);
        goto done;
    }
    int64_t bytes = (int64_t)head[1] * head[2] * head[3];
    char what[96];
    snprintf(what, sizeof what, "%u images of %ux%u pixels", head[1], head[2], head[3]);
    /* a header claiming 1e8 images must not reserve gigabytes for a small file */
    if ((rc = um_dio_check_declared(images_path, 16 + bytes, what))) goto done;
    if ((rc = um_dataset_new(&ds, name, head[1], 1, (int)head[2], (int)head[3], num_classes))) {
        if (rc == UM_ENOMEM) rc = um_dio_no_memory(images_path, what, bytes);
        goto done;
    }
    if ((rc = um_dio_read(f, images_path, ds->pixels, bytes, 16, what))) goto done;
    if ((rc = um_dio_expect_end(f, images_path, 16 + bytes, what))) goto done;
    if (transpose) transpose_images(ds->pixels, ds->n, ds->h);
    rc = read_labels(ds, labels_path, label_min);
done:
    gzclose(f);
    if (rc) um_dataset_free(ds);
    else *out = ds;
    return rc;
}
