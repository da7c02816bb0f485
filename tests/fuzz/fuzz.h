/* Fuzz entry points, one per file reader: each takes arbitrary bytes, hands them to the
 * reader as a file (in a private temporary folder) or from memory, frees whatever came
 * back and returns 0; bad input must only ever give an error code, never a crash, a
 * sanitizer report or a leak. Built for libFuzzer (tests/fuzz/libfuzzer.c) and replayed
 * over the committed corpora by `make test` (tests/fuzz/replay.c). */
#ifndef UM_FUZZ_H
#define UM_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int um_fuzz_idx(const uint8_t *data, size_t size);        /* byte 0: options, then images + labels, split */
int um_fuzz_cifar(const uint8_t *data, size_t size);      /* byte 0: label bytes, then a batch */
int um_fuzz_svhn(const uint8_t *data, size_t size);       /* a .mat file */
int um_fuzz_png(const uint8_t *data, size_t size);        /* one PNG in a folder */
int um_fuzz_h5(const uint8_t *data, size_t size);         /* a checkpoint, as given */
int um_fuzz_h5_resealed(const uint8_t *data, size_t size);/* the same with its digest redone */
int um_fuzz_tfckpt(const uint8_t *data, size_t size);     /* .index + .data, split */
int um_fuzz_sstable(const uint8_t *data, size_t size);    /* a LevelDB table in memory */

typedef struct um_fuzz_target {
    const char *name;   /* crashes found are kept in tests/fuzz/regressions/<name> */
    const char *seeds;  /* seed corpus: tests/fuzz/corpus/<seeds> */
    int (*run)(const uint8_t *data, size_t size);
} um_fuzz_target;
extern const um_fuzz_target um_fuzz_targets[];   /* ends with an entry of NULLs */

/* ---- helpers of the entry points (tests/fuzz/fuzz_util.c) ---- */
/* Write bytes to <private temporary folder>/<name>; the path into path[0..n). -1 on failure. */
int um_fuzz_write(const char *name, const void *data, size_t size, char *path, size_t n);
/* The private temporary folder (created on first use, removed at exit). */
const char *um_fuzz_dir(void);
/* Two inputs in one: the first two bytes (little endian) give the length of the first
 * part, clamped to what follows; the second part is the rest. */
void um_fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na,
                   const uint8_t **b, size_t *nb);
/* rc, after printing the reader's message to stderr when UMBRA_FUZZ_VERBOSE is set
 * (to see how far the seeds get: they are meant to load). */
int um_fuzz_note(const char *what, int rc);
#endif
