/* Reader for LevelDB-format sorted tables (TensorFlow's .index files use this format):
 * a footer with the index block's handle, data blocks of prefix-compressed entries with
 * restart points, each block followed by a compression byte and a masked CRC32C.
 * The whole table is in memory; every block's CRC is verified before it is parsed. */
#ifndef UM_SSTABLE_H
#define UM_SSTABLE_H
#include <stddef.h>
#include <stdint.h>

#define UM_SSTABLE_MAGIC 0xdb4775248b80fb57ull
#define UM_SSTABLE_FOOTER 48

/* Called for every entry, in table order; a non-zero return stops the scan and is returned. */
typedef int (*um_sstable_visit)(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* Walk the table held in buf[0..n). fname names the file in error messages (UM_EFORMAT). */
int um_sstable_scan(const uint8_t *buf, size_t n, const char *fname, um_sstable_visit visit, void *ud);

/* Base-128 varint (LevelDB and protobuf share it): 0 on success, -1 when truncated or
 * longer than 10 bytes. Advances *p. */
static inline int um_get_varint64(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return 0; }
    }
    return -1;
}

static inline uint32_t um_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t um_load_le64(const uint8_t *p) {
    return (uint64_t)um_load_le32(p) | (uint64_t)um_load_le32(p + 4) << 32;
}

#endif
