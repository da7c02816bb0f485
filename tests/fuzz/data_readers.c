/* Fuzz entry points of the data set readers (core/data/): IDX image/label pairs and CIFAR
 * batches (gzip or plain: the seeds hold both), SVHN .mat files and a folder of one PNG.
 * Whatever the reader returns, the data set is freed; only a crash or a leak is a finding. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/data.h"
#include "fuzz.h"

int um_fuzz_idx(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* byte 0 picks the options: transposed (EMNIST) and 1-based labels; then the two files */
    int opt = data[0];
    const uint8_t *img, *lab;
    size_t nimg, nlab;
    um_fuzz_split(data + 1, size - 1, &img, &nimg, &lab, &nlab);
    char ipath[320], lpath[320];
    if (um_fuzz_write("images-idx3-ubyte", img, nimg, ipath, sizeof ipath) ||
        um_fuzz_write("labels-idx1-ubyte", lab, nlab, lpath, sizeof lpath)) return 0;
    um_dataset *ds = NULL;
    if (um_fuzz_note("idx", um_read_idx(&ds, ipath, lpath, "fuzz", opt & 1, (opt >> 1) & 1, 10)) == 0) um_dataset_free(ds);
    unlink(ipath);
    unlink(lpath);
    return 0;
}

int um_fuzz_cifar(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int label_bytes = 1 + (data[0] & 1);
    char path[320];
    if (um_fuzz_write("data_batch.bin", data + 1, size - 1, path, sizeof path)) return 0;
    const char *paths[1] = {path};
    um_dataset *ds = NULL;
    if (um_fuzz_note("cifar", um_read_cifar(&ds, 1, paths, NULL, label_bytes, label_bytes == 1 ? 10 : 100, "fuzz")) == 0)
        um_dataset_free(ds);
    unlink(path);
    return 0;
}

int um_fuzz_svhn(const uint8_t *data, size_t size) {
    char path[320];
    if (um_fuzz_write("svhn.mat", data, size, path, sizeof path)) return 0;
    um_dataset *ds = NULL;
    if (um_fuzz_note("svhn", um_read_svhn(&ds, path, "fuzz")) == 0) um_dataset_free(ds);
    unlink(path);
    return 0;
}

int um_fuzz_png(const uint8_t *data, size_t size) {
    char folder[320], path[400];
    snprintf(folder, sizeof folder, "%s/png", um_fuzz_dir());
    if (access(folder, F_OK) != 0 && mkdir(folder, 0700) != 0) return 0;
    if (um_fuzz_write("png/image.png", data, size, path, sizeof path)) return 0;
    um_dataset *ds = NULL;
    if (um_fuzz_note("png", um_read_png_folder(&ds, folder, 8, 8, 0, "fuzz")) == 0) um_dataset_free(ds);
    unlink(path);
    return 0;
}
