/* Shared file helpers of the data set readers: gzip-or-plain streams through zlib
 * (gzread passes plain files through unchanged), exact reads that report how many bytes
 * were found, and the uncompressed size of a stream, known before reading it. */
#ifndef UM_DATA_IO_H
#define UM_DATA_IO_H
#include <stdint.h>
#include <zlib.h>

/* Open for reading; UM_EIO with "<path>: <reason>" when it cannot be opened. */
int um_dio_open(gzFile *out, const char *path);
/* Read exactly n bytes. Short read: UM_EFORMAT "<path>: truncated: expected <what> (n bytes
 * from offset off), found m"; a zlib error (bad CRC, broken stream): UM_EFORMAT naming it.
 * off is the offset of buf in the uncompressed stream (for the message). */
int um_dio_read(gzFile f, const char *path, void *buf, int64_t n, int64_t off, const char *what);
/* Succeeds when the stream ends at uncompressed offset `end`; otherwise UM_EFORMAT
 * "<path>: unexpected data after <what> (expected end of file at byte end)". */
int um_dio_expect_end(gzFile f, const char *path, int64_t end, const char *what);
/* Uncompressed size: the file size of a plain file, the gzip trailer (ISIZE, modulo 2^32)
 * of a gzip file; UM_EIO when it cannot be read. *is_gzip tells which. */
int um_dio_size(const char *path, int64_t *size, int *is_gzip);
/* Before allocating what a header declares: total (header included) must be the file's
 * length (plain), or agree with the gzip trailer's length modulo 2^32 and deflate's
 * largest ratio (gzip). UM_EFORMAT naming both otherwise. */
int um_dio_check_declared(const char *path, int64_t total, const char *what);
/* UM_ENOMEM "<path>: out of memory for <what> (<bytes> bytes)". */
int um_dio_no_memory(const char *path, const char *what, int64_t bytes);
/* Big-endian 32-bit integer. */
static inline uint32_t um_dio_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
