/* Helpers shared by the fuzz entry points: a private temporary folder for the files a
 * reader needs, removed at exit, and the split of one input into two files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "error.h"
#include "fuzz.h"

static char dir[256];

static void remove_dir(void) {
    if (!dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *um_fuzz_dir(void) {
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/umbra_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) { perror("fuzz: mkdtemp"); abort(); }
        atexit(remove_dir);
    }
    return dir;
}

int um_fuzz_write(const char *name, const void *data, size_t size, char *path, size_t n) {
    snprintf(path, n, "%s/%s", um_fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && w == size ? 0 : -1;
}

void um_fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na,
                   const uint8_t **b, size_t *nb) {
    size_t first = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    size_t rest = size >= 2 ? size - 2 : 0;
    if (first > rest) first = rest;
    *a = data + (size >= 2 ? 2 : size);
    *na = first;
    *b = *a + first;
    *nb = rest - first;
}

int um_fuzz_note(const char *what, int rc) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("UMBRA_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, rc ? um_last_error() : "loaded");
    return rc;
}

const um_fuzz_target um_fuzz_targets[] = {
    {"idx", "idx", um_fuzz_idx},
    {"cifar", "cifar", um_fuzz_cifar},
    {"svhn", "svhn", um_fuzz_svhn},
    {"png", "png", um_fuzz_png},
    {"h5", "h5", um_fuzz_h5},
    {"h5_resealed", "h5", um_fuzz_h5_resealed},   /* the same seeds, digest redone */
    {"tfckpt", "tfckpt", um_fuzz_tfckpt},
    {"sstable", "sstable", um_fuzz_sstable},
    {NULL, NULL, NULL},
};
