/* Counting allocator: every block carries a header with its size so live bytes can be
 * tracked; blocks are 64-byte aligned for SIMD kernels and followed by at least 64 bytes of
 * slack, so that a masked vector load or store of a row's tail (core/cpu/pool_avx2.c),
 * whose masked-out lanes may lie past the data, stays inside the block. A test hook makes the N-th
 * allocation fail; an out-of-memory hook (a Lua full GC) gets one chance before failure. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "error.h"

#define UM_ALIGN 64
typedef struct { size_t bytes; void *raw; } um_block_header;

static atomic_llong live_bytes;
static atomic_llong live_blocks;
static atomic_llong fail_countdown;   /* 0: off */
static void (*oom_hook)(void *);
static void *oom_ud;

void um_alloc_fail_after(int64_t n) { atomic_store(&fail_countdown, n > 0 ? n : 0); }
void um_set_oom_hook(void (*hook)(void *), void *ud) { oom_hook = hook; oom_ud = ud; }
void um_run_oom_hook(void) { if (oom_hook) oom_hook(oom_ud); }
int64_t um_live_bytes(void) { return atomic_load(&live_bytes); }
int64_t um_live_blocks(void) { return atomic_load(&live_blocks); }

static int injected_failure(void) {
    long long c = atomic_load(&fail_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) return c == 1;
    }
    return 0;
}

static void *raw_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 2 * UM_ALIGN - sizeof(um_block_header)) return NULL;
    return malloc(bytes + 2 * UM_ALIGN + sizeof(um_block_header));   /* alignment, then the slack */
}

void *um_alloc(size_t bytes) {
    if (injected_failure()) {
        um_fail(UM_ENOMEM, "out of memory: allocation of %zu bytes failed (injected by the test hook)", bytes);
        return NULL;
    }
    void *raw = raw_alloc(bytes);
    if (!raw && oom_hook) {
        oom_hook(oom_ud);
        raw = raw_alloc(bytes);
    }
    if (!raw) {
        um_fail(UM_ENOMEM, "out of memory: allocation of %zu bytes failed", bytes);
        return NULL;
    }
    uintptr_t p = ((uintptr_t)raw + sizeof(um_block_header) + UM_ALIGN - 1) & ~(uintptr_t)(UM_ALIGN - 1);
    um_block_header *h = (um_block_header *)p - 1;
    h->bytes = bytes;
    h->raw = raw;
    atomic_fetch_add(&live_bytes, (long long)bytes);
    atomic_fetch_add(&live_blocks, 1);
    return (void *)p;
}

void *um_calloc(size_t bytes) {
    void *p = um_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void um_dealloc(void *p) {
    if (!p) return;
    um_block_header *h = (um_block_header *)p - 1;
    atomic_fetch_sub(&live_bytes, (long long)h->bytes);
    atomic_fetch_sub(&live_blocks, 1);
    free(h->raw);
}
