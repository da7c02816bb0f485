/* CRC32C: the SSE4.2 crc32 instruction when the CPU has it (checked once at run time, so
 * the library still runs on machines without it), else a byte-wise table over the
 * reflected polynomial 0x82f63b78. */
#include <pthread.h>
#include <string.h>
#include "io/crc32c.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        table[i] = c;
    }
}

static uint32_t crc_table(uint32_t c, const unsigned char *p, size_t n) {
    pthread_once(&table_once, build_table);
    while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

uint32_t um_crc32c_extend_portable(uint32_t crc, const void *data, size_t n) {
    return ~crc_table(~crc, data, n);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define UM_HAVE_SSE42_PATH 1

__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t c, const unsigned char *p, size_t n) {
    uint64_t c64 = c;
    for (; n && ((uintptr_t)p & 7); n--) c64 = _mm_crc32_u8((uint32_t)c64, *p++);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);   /* aligned already; memcpy keeps strict aliasing happy */
        c64 = _mm_crc32_u64(c64, w);
    }
    uint32_t c32 = (uint32_t)c64;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

uint32_t um_crc32c_extend(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = ~crc;
#ifdef UM_HAVE_SSE42_PATH
    if (__builtin_cpu_supports("sse4.2")) return ~crc_sse42(c, p, n);
#endif
    return ~crc_table(c, p, n);
}
