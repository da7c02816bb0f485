/* Device memory of the CUDA backend: cudaMalloc behind a cache of freed blocks, because
 * cudaFree synchronises the whole device and cudaMalloc is slow; sizes are rounded to
 * classes so blocks get reused. Every kernel runs on one stream, so a block freed here and
 * handed out again is only touched by work queued after the work that used it before.
 * Also the one scratch buffer that kernels share (cuDNN workspace, padded images). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "cuda_backend.h"

typedef struct node {
    void *p;
    size_t bytes;
    struct node *next;
} node;

#define LIVE_BUCKETS 4096
#define FREE_BUCKETS 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static node *live[LIVE_BUCKETS];     /* pointer -> rounded size of blocks in use */
static node *cached[FREE_BUCKETS];   /* freed blocks by size class */
static node *spare;                  /* recycled list nodes */
static int64_t bytes_in_use, bytes_cached, bytes_peak;
static void *scratch;
static size_t scratch_bytes;
static int scratch_shrink;   /* set when cudaMalloc ran out: the next scratch request sets its size */

/* 512 B .. 1 MiB: powers of two; above: multiples of 2 MiB. */
static size_t size_class(size_t n) {
    if (n <= 512) return 512;
    if (n <= ((size_t)1 << 20)) {
        size_t c = 1024;
        while (c < n) c <<= 1;
        return c;
    }
    const size_t m = (size_t)2 << 20;
    return (n + m - 1) / m * m;
}

static unsigned ptr_hash(const void *p) { return (unsigned)(((uintptr_t)p >> 9) * 2654435761u) % LIVE_BUCKETS; }
static unsigned size_hash(size_t s) { return (unsigned)((s >> 9) * 40503u) % FREE_BUCKETS; }

static node *new_node(void) {
    node *n = spare;
    if (n) spare = n->next;
    else n = (node *)malloc(sizeof *n);
    return n;
}

static void recycle(node *n) {
    n->next = spare;
    spare = n;
}

/* Take a cached block of exactly this class (caller holds the lock). */
static void *take_cached(size_t cls) {
    node **pp = &cached[size_hash(cls)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->bytes == cls) {
            node *n = *pp;
            void *p = n->p;
            *pp = n->next;
            recycle(n);
            bytes_cached -= (int64_t)cls;
            return p;
        }
    return NULL;
}

/* cudaFree every cached block (this synchronises the device). */
static void drop_cache(void) {
    pthread_mutex_lock(&lock);
    for (int b = 0; b < FREE_BUCKETS; b++) {
        while (cached[b]) {
            node *n = cached[b];
            cached[b] = n->next;
            cudaFree(n->p);
            bytes_cached -= (int64_t)n->bytes;
            recycle(n);
        }
    }
    pthread_mutex_unlock(&lock);
}

static int track(void *p, size_t cls) {
    pthread_mutex_lock(&lock);
    node *n = new_node();
    if (n) {
        n->p = p;
        n->bytes = cls;
        unsigned h = ptr_hash(p);
        n->next = live[h];
        live[h] = n;
        bytes_in_use += (int64_t)cls;
        if (bytes_in_use > bytes_peak) bytes_peak = bytes_in_use;
    }
    pthread_mutex_unlock(&lock);
    return n ? UM_OK : um_fail(UM_ENOMEM, "cuda: out of host memory for the allocator's bookkeeping");
}

int um_cu_malloc(void **out, size_t bytes) {
    size_t cls = size_class(bytes);
    pthread_mutex_lock(&lock);
    void *p = take_cached(cls);
    pthread_mutex_unlock(&lock);
    if (!p) {
        cudaError_t e = cudaMalloc(&p, cls);
        for (int attempt = 0; e == cudaErrorMemoryAllocation && attempt < 2; attempt++) {
            cudaGetLastError();   /* clear it: the retry decides */
            scratch_shrink = 1;
            if (attempt == 1) um_run_oom_hook();   /* dropped Lua tensors give their blocks back */
            drop_cache();
            e = cudaMalloc(&p, cls);
        }
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            return um_fail(UM_ENOMEM, "cuda: out of device memory: cudaMalloc of %zu bytes failed (%lld bytes in use)",
                           cls, (long long)bytes_in_use);
        }
        if (e != cudaSuccess) return um_cu_fail_cuda(e, "cudaMalloc(&p, bytes)", __FILE__, __LINE__);
    }
    int rc = track(p, cls);
    if (rc) {
        cudaFree(p);
        return rc;
    }
    *out = p;
    return UM_OK;
}

void um_cu_free(void *p) {
    if (!p) return;
    pthread_mutex_lock(&lock);
    node **pp = &live[ptr_hash(p)];
    while (*pp && (*pp)->p != p) pp = &(*pp)->next;
    node *n = *pp;
    if (n) {
        *pp = n->next;
        bytes_in_use -= (int64_t)n->bytes;
        bytes_cached += (int64_t)n->bytes;
        unsigned h = size_hash(n->bytes);
        n->next = cached[h];
        cached[h] = n;
    }
    pthread_mutex_unlock(&lock);
    /* Not handed out by this allocator, or freed already: passing it to cudaFree could free
     * a block that a cached node still lists (a later use-after-free on the device), so stop
     * here, where the stack still shows who freed it. */
    if (!n) {
        fprintf(stderr, "umbra cuda: um_cu_free(%p): not a live block of the device allocator "
                        "(freed twice, or never allocated here); aborting\n", p);
        abort();
    }
}

/* Grown on demand; after the device ran out of memory, sized afresh by the next request
 * (a workspace of a once-chosen algorithm need not stay held for good). */
int um_cu_scratch(void **p, size_t bytes) {
    if (bytes < 256) bytes = 256;
    if (bytes > scratch_bytes || (scratch_shrink && bytes < scratch_bytes)) {
        scratch_shrink = 0;
        void *fresh = NULL;
        um_cu_free(scratch);   /* stream order makes the old one safe to hand out again */
        scratch = NULL;
        scratch_bytes = 0;
        UM_TRY(um_cu_malloc(&fresh, bytes));
        scratch = fresh;
        scratch_bytes = bytes;
    }
    *p = scratch;
    return UM_OK;
}

extern "C" void um_cuda_memory(int64_t *in_use, int64_t *cached_bytes, int64_t *peak) {
    pthread_mutex_lock(&lock);
    if (in_use) *in_use = bytes_in_use;
    if (cached_bytes) *cached_bytes = bytes_cached;
    if (peak) *peak = bytes_peak;
    pthread_mutex_unlock(&lock);
}

extern "C" void um_cuda_empty_cache(void) {
    if (scratch) {
        um_cu_free(scratch);
        scratch = NULL;
        scratch_bytes = 0;
    }
    drop_cache();
}
