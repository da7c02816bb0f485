/* LevelDB table reading (format: leveldb/doc/table_format.md; TensorFlow's copy lives in
 * tensorflow/core/lib/io/table*). Only what checkpoints need: a full in-order scan of
 * uncompressed tables. Every length read from the file is bounds-checked before use,
 * because a corrupt file must end in a message, never in a read past the buffer. */
#include <string.h>
#include "alloc.h"
#include "io/crc32c.h"
#include "error.h"
#include "io/sstable.h"

typedef struct { uint64_t off, size; } block_handle;

static int get_handle(const uint8_t **p, const uint8_t *end, block_handle *h) {
    return um_get_varint64(p, end, &h->off) || um_get_varint64(p, end, &h->size) ? -1 : 0;
}

/* Check that the block lies inside the file, verify its CRC and compression byte. */
static int load_block(const uint8_t *buf, size_t n, const char *fname, block_handle h,
                      const char *what, const uint8_t **blk) {
    if (h.off > n || h.size > n - h.off || n - h.off - h.size < 5)
        return um_fail(UM_EFORMAT, "%s: truncated or corrupt: the %s block (offset %llu, %llu bytes "
                       "+ 5-byte trailer) runs past the end of the file (%zu bytes)", fname, what,
                       (unsigned long long)h.off, (unsigned long long)h.size, n);
    const uint8_t *b = buf + h.off;
    uint8_t type = b[h.size];
    uint32_t stored = um_load_le32(b + h.size + 1);
    uint32_t actual = um_crc32c_mask(um_crc32c_extend(um_crc32c(b, h.size), &type, 1));
    if (stored != actual)
        return um_fail(UM_EFORMAT, "%s: block CRC mismatch in the %s block at offset %llu (stored "
                       "0x%08x, computed 0x%08x): the file is corrupt", fname, what,
                       (unsigned long long)h.off, um_crc32c_unmask(stored), um_crc32c_unmask(actual));
    if (type == 1)
        return um_fail(UM_EFORMAT, "%s: the %s block is snappy-compressed; umbra reads only "
                       "uncompressed tables (TensorFlow writes checkpoint indexes uncompressed)",
                       fname, what);
    if (type != 0)
        return um_fail(UM_EFORMAT, "%s: the %s block has unknown compression type %u", fname, what, type);
    *blk = b;
    return UM_OK;
}

/* Walk the entries of one verified block; keys are rebuilt from their shared prefixes. */
static int scan_block(const uint8_t *b, uint64_t size, const char *fname, const char *what,
                      um_sstable_visit visit, void *ud) {
    if (size < 4)
        return um_fail(UM_EFORMAT, "%s: corrupt %s block: %llu bytes, too short for its restart "
                       "count", fname, what, (unsigned long long)size);
    uint32_t nrest = um_load_le32(b + size - 4);
    if (nrest == 0 || nrest > (size - 4) / 4)
        return um_fail(UM_EFORMAT, "%s: corrupt %s block: %u restart points in %llu bytes", fname,
                       what, nrest, (unsigned long long)size);
    uint64_t data_end = size - 4 - 4ull * nrest;
    const uint8_t *rest = b + data_end;
    for (uint32_t r = 0; r < nrest; r++)
        if (um_load_le32(rest + 4 * r) > data_end || (r == 0 && um_load_le32(rest) != 0))
            return um_fail(UM_EFORMAT, "%s: corrupt %s block: restart point %u at %u is outside "
                           "the entries (%llu bytes)", fname, what, r, um_load_le32(rest + 4 * r),
                           (unsigned long long)data_end);
    /* a key is never longer than all the key bytes of the block together */
    uint8_t *key = um_alloc(data_end + 1);
    if (!key) return UM_ENOMEM;
    int rc = UM_OK;
    uint64_t klen = 0;
    uint32_t next_restart = 0;
    const uint8_t *p = b, *end = b + data_end;
    while (p < end) {
        uint64_t at = (uint64_t)(p - b), shared, nonshared, vlen;
        if (um_get_varint64(&p, end, &shared) || um_get_varint64(&p, end, &nonshared) ||
            um_get_varint64(&p, end, &vlen) || shared > klen || nonshared > (uint64_t)(end - p) ||
            vlen > (uint64_t)(end - p) - nonshared) {
            rc = um_fail(UM_EFORMAT, "%s: corrupt entry at offset %llu of the %s block", fname,
                         (unsigned long long)at, what);
            break;
        }
        while (next_restart < nrest && um_load_le32(rest + 4 * next_restart) < at) next_restart++;
        if (next_restart < nrest && um_load_le32(rest + 4 * next_restart) == at && shared != 0) {
            rc = um_fail(UM_EFORMAT, "%s: corrupt %s block: the entry at restart point %llu shares "
                         "a key prefix", fname, what, (unsigned long long)at);
            break;
        }
        memcpy(key + shared, p, nonshared);
        klen = shared + nonshared;
        p += nonshared;
        key[klen] = 0;
        if ((rc = visit(ud, key, klen, p, vlen)) != 0) break;
        p += vlen;
    }
    um_dealloc(key);
    return rc;
}

typedef struct {
    const uint8_t *buf;
    size_t n;
    const char *fname;
    um_sstable_visit visit;
    void *ud;
} scan_state;

/* Visitor for the index block: each value is the handle of one data block. */
static int visit_index(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
    scan_state *s = ud;
    block_handle h;
    const uint8_t *p = val, *blk;
    if (get_handle(&p, val + vlen, &h))
        return um_fail(UM_EFORMAT, "%s: corrupt block handle in the index block", s->fname);
    int rc = load_block(s->buf, s->n, s->fname, h, "data", &blk);
    return rc ? rc : scan_block(blk, h.size, s->fname, "data", s->visit, s->ud);
}

static int ignore_entry(void *ud, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen) {
    return 0;
}

int um_sstable_scan(const uint8_t *buf, size_t n, const char *fname, um_sstable_visit visit, void *ud) {
    if (n < UM_SSTABLE_FOOTER)
        return um_fail(UM_EFORMAT, "%s: truncated: %zu bytes, shorter than the %d-byte table footer",
                       fname, n, UM_SSTABLE_FOOTER);
    const uint8_t *foot = buf + n - UM_SSTABLE_FOOTER;
    uint64_t magic = um_load_le64(foot + UM_SSTABLE_FOOTER - 8);
    if (magic != UM_SSTABLE_MAGIC)
        return um_fail(UM_EFORMAT, "%s: bad magic 0x%016llx at the end of the file (expected "
                       "0x%016llx): not a TensorFlow checkpoint index, or truncated", fname,
                       (unsigned long long)magic, UM_SSTABLE_MAGIC);
    block_handle meta, index;
    const uint8_t *p = foot, *fend = foot + UM_SSTABLE_FOOTER - 8, *blk;
    if (get_handle(&p, fend, &meta) || get_handle(&p, fend, &index))
        return um_fail(UM_EFORMAT, "%s: corrupt table footer", fname);
    /* the metaindex block (filters) is unused, but it is verified like the others */
    int rc = load_block(buf, n, fname, meta, "metaindex", &blk);
    if (rc == UM_OK) rc = scan_block(blk, meta.size, fname, "metaindex", ignore_entry, NULL);
    if (rc == UM_OK) rc = load_block(buf, n, fname, index, "index", &blk);
    if (rc != UM_OK) return rc;
    scan_state s = {buf, n, fname, visit, ud};
    return scan_block(blk, index.size, fname, "index", visit_index, &s);
}
