/* Philox 4x32-10 (Salmon et al., SC'11): a counter-based generator, so a stream is a pure
 * function of (seed, counter) and bulk fills can give element i a fixed place in the
 * stream whatever the thread count or device. */
#include <math.h>
#include "rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void um_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0; c1 = (uint32_t)p1; c2 = n2; c3 = (uint32_t)p0;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void um_generator_init(um_generator *g, uint64_t seed) { g->seed = seed; g->counter = 0; }

static inline float u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Box-Muller on two words; u1 is kept away from 0 so the log is finite. */
static inline float box_muller(uint32_t a, uint32_t b) {
    double u1 = ((double)a + 1.0) / 4294967296.0;
    double u2 = (double)b / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float um_rand_uniform(um_generator *g) {
    uint32_t w[4];
    um_philox4x32(g->seed, g->counter++, w);
    return u32_to_unit(w[0]);
}

double um_rand_uniform_double(um_generator *g) {
    uint32_t w[4];
    um_philox4x32(g->seed, g->counter++, w);
    uint64_t x = ((uint64_t)w[0] << 21) ^ (uint64_t)(w[1] >> 11);
    return (double)(x & ((1ull << 53) - 1)) / 9007199254740992.0;
}

float um_rand_normal(um_generator *g) {
    uint32_t w[4];
    um_philox4x32(g->seed, g->counter++, w);
    return box_muller(w[0], w[1]);
}

uint64_t um_rand_below(um_generator *g, uint64_t n) {
    if (n <= 1) { g->counter++; return 0; }
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;   /* rejection keeps it exactly uniform */
    for (;;) {
        uint32_t w[4];
        um_philox4x32(g->seed, g->counter++, w);
        uint64_t x = ((uint64_t)w[0] << 32) | w[1];
        if (x < limit) return x % n;
    }
}

void um_fill_uniform(um_generator *g, float *out, int64_t n, float lo, float hi) {
    uint64_t c0 = g->counter;
    float span = hi - lo;
    #pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t b = 0; b < (n + 3) / 4; b++) {
        uint32_t w[4];
        um_philox4x32(g->seed, c0 + (uint64_t)b, w);
        for (int j = 0; j < 4 && b * 4 + j < n; j++) out[b * 4 + j] = lo + span * u32_to_unit(w[j]);
    }
    g->counter = c0 + (uint64_t)((n + 3) / 4);
}

void um_fill_normal(um_generator *g, float *out, int64_t n, float mean, float std) {
    uint64_t c0 = g->counter;
    #pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t b = 0; b < (n + 1) / 2; b++) {
        uint32_t w[4];
        um_philox4x32(g->seed, c0 + (uint64_t)b, w);
        out[b * 2] = mean + std * box_muller(w[0], w[1]);
        if (b * 2 + 1 < n) out[b * 2 + 1] = mean + std * box_muller(w[2], w[3]);
    }
    g->counter = c0 + (uint64_t)((n + 1) / 2);
}

void um_fill_truncated_normal(um_generator *g, float *out, int64_t n, float mean, float std) {
    for (int64_t i = 0; i < n; i++) {
        float z;
        do z = um_rand_normal(g); while (fabsf(z) > 2.0f);
        out[i] = mean + std * z;
    }
}

void um_rand_permutation(um_generator *g, int64_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)um_rand_below(g, (uint64_t)i + 1);
        int64_t t = out[i]; out[i] = out[j]; out[j] = t;
    }
}
