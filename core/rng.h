/* Explicit random generators: Philox 4x32-10, counter based, so a stream can be
 * reproduced on any device and saved/restored exactly (seed + counter).
 * Bulk fills give element i a fixed place in the stream, independent of threads. */
#ifndef UM_RNG_H
#define UM_RNG_H
#include <stdint.h>

typedef struct um_generator {
    uint64_t seed;     /* key of the Philox bijection */
    uint64_t counter;  /* next unused 128-bit block */
} um_generator;

void um_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);
void um_generator_init(um_generator *g, uint64_t seed);

/* Scalars (each consumes one block). */
float um_rand_uniform(um_generator *g);            /* [0,1) */
double um_rand_uniform_double(um_generator *g);    /* [0,1), 53 bits */
float um_rand_normal(um_generator *g);             /* N(0,1) */
uint64_t um_rand_below(um_generator *g, uint64_t n); /* uniform integer in [0,n), n >= 1 */

/* Bulk fills. uniform: word i of the stream from the current block, consumes ceil(n/4) blocks.
 * normal: element i uses block c0+i/2 (Box-Muller on 2 words), consumes ceil(n/2) blocks.
 * truncated normal: TF's rule, redraw beyond 2 sigma; sequential, one block per draw. */
void um_fill_uniform(um_generator *g, float *out, int64_t n, float lo, float hi);
void um_fill_normal(um_generator *g, float *out, int64_t n, float mean, float std);
void um_fill_truncated_normal(um_generator *g, float *out, int64_t n, float mean, float std);
/* A uniformly random permutation of 0..n-1 (Fisher-Yates). */
void um_rand_permutation(um_generator *g, int64_t *out, int64_t n);

#endif
