/* CRC32C (Castagnoli polynomial), as used by LevelDB tables, TensorFlow checkpoints and
 * TensorBoard event files, plus TensorFlow's "masked" form, which those formats store so
 * that a CRC computed over data that itself contains CRCs stays well distributed. */
#ifndef UM_CRC32C_H
#define UM_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Extend crc (the value returned for the bytes before) with n more bytes; start with 0. */
uint32_t um_crc32c_extend(uint32_t crc, const void *data, size_t n);
static inline uint32_t um_crc32c(const void *data, size_t n) { return um_crc32c_extend(0, data, n); }
/* The table-only path, whatever the CPU (tests compare it with the fast one). */
uint32_t um_crc32c_extend_portable(uint32_t crc, const void *data, size_t n);

static inline uint32_t um_crc32c_mask(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t um_crc32c_unmask(uint32_t masked) {
    uint32_t rot = masked - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

#endif
