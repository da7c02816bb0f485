/* Fuzz entry points of the checkpoint readers (core/io/): umbra's HDF5 checkpoints, and
 * TensorFlow checkpoints (index + data shard, and the LevelDB table of the index alone).
 * A mutated sealed checkpoint is almost always refused by its CRC32C digest before libhdf5
 * sees it, so um_fuzz_h5_resealed recomputes the digest block over the mutated bytes
 * first: that is what lets the fuzzer reach HDF5's parser and umbra's reading of what it
 * returns. Likewise every block of a TF index carries a CRC32C; the data shard does not
 * (each tensor does), so the shard is where mutations get furthest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"
#include "io/h5io.h"
#include "io/h5io_seal.h"
#include "io/sstable.h"
#include "io/tfckpt.h"
#include "tensor.h"

static void read_checkpoint(const char *path) {
    um_h5_contents *c = NULL;
    if (um_fuzz_note("h5", um_h5_read(&c, path, NULL, 1, 1)) == 0) um_h5_contents_free(c);
    c = NULL;   /* foreign files too: without the format check, names and attributes only */
    if (um_h5_read(&c, path, "model", 0, 0) == 0) um_h5_contents_free(c);
}

int um_fuzz_h5(const uint8_t *data, size_t size) {
    char path[320];
    if (um_fuzz_write("checkpoint.h5", data, size, path, sizeof path)) return 0;
    read_checkpoint(path);
    unlink(path);
    return 0;
}

int um_fuzz_h5_resealed(const uint8_t *data, size_t size) {
    if (size < UM_H5_SEAL_BYTES) return um_fuzz_h5(data, size);
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    um_h5_seal_image(copy, size);
    int rc = um_fuzz_h5(copy, size);
    free(copy);
    return rc;
}

int um_fuzz_tfckpt(const uint8_t *data, size_t size) {
    const uint8_t *index, *shard;
    size_t nindex, nshard;
    um_fuzz_split(data, size, &index, &nindex, &shard, &nshard);
    char ipath[320], dpath[320], prefix[320];
    if (um_fuzz_write("model.index", index, nindex, ipath, sizeof ipath) ||
        um_fuzz_write("model.data-00000-of-00001", shard, nshard, dpath, sizeof dpath)) return 0;
    snprintf(prefix, sizeof prefix, "%s/model", um_fuzz_dir());
    um_tfckpt *ck = NULL;
    if (um_fuzz_note("tfckpt", um_tfckpt_open(&ck, prefix)) == 0) {
        for (int i = 0; i < um_tfckpt_count(ck); i++) {
            const char *name;
            int dtype, ndim;
            int64_t sizes[UM_MAXDIM];
            if (um_tfckpt_entry(ck, i, &name, &dtype, &ndim, sizes)) continue;
            um_tensor *t = NULL;
            if (um_tfckpt_find(ck, name) == i && um_fuzz_note("tfckpt read", um_tfckpt_read(ck, name, &t)) == 0) um_tensor_release(t);
        }
        um_tfckpt_close(ck);
    }
    unlink(ipath);
    unlink(dpath);
    return 0;
}

static volatile uint8_t sink;

static int count_entry(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
    /* touch every byte handed out, so that a span past the buffer is a sanitizer report */
    uint8_t x = 0;
    for (size_t i = 0; i < klen; i++) x ^= key[i];
    for (size_t i = 0; i < vlen; i++) x ^= val[i];
    sink ^= x;
    *(size_t *)ud += 1;
    return 0;
}

int um_fuzz_sstable(const uint8_t *data, size_t size) {
    /* a copy of exactly size bytes, so that a read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    size_t n = 0;
    um_fuzz_note("sstable", um_sstable_scan(copy, size, "fuzz.index", count_entry, &n));
    free(copy);
    return 0;
}
