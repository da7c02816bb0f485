/* gzip-or-plain reading for the data set readers (see data_io.h). Messages always name
 * the file and say what was expected and what was found, so a user can tell a truncated
 * download from a wrong file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "data/file_io.h"
#include "error.h"

int um_dio_open(gzFile *out, const char *path) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return um_fail(UM_EIO, "%s: cannot open (%s)", path, errno ? strerror(errno) : "zlib could not allocate");
    gzbuffer(f, 1 << 18);
    *out = f;
    return UM_OK;
}

/* The zlib error of f as a message without zlib's "<path>: " prefix, or NULL when the
 * stream only ended early (Z_BUF_ERROR: truncation, reported by the caller as such). */
static const char *stream_error(gzFile f, const char *path) {
    int code;
    const char *msg = gzerror(f, &code);
    if (code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR) return NULL;
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg;
}

int um_dio_read(gzFile f, const char *path, void *buf, int64_t n, int64_t off, const char *what) {
    int64_t got = 0;
    while (got < n) {
        int64_t chunk = n - got < (1 << 30) ? n - got : (1 << 30);
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0) break;
        got += r;
        if (r < chunk) break;
    }
    if (got == n) return UM_OK;
    const char *err = stream_error(f, path);
    int code;
    gzerror(f, &code);
    if (code == Z_MEM_ERROR) return um_fail(UM_ENOMEM, "%s: out of memory while decompressing %s", path, what);
    if (err)
        return um_fail(UM_EFORMAT, "%s: corrupt gzip stream (%s) while reading %s at byte %lld", path, err, what, (long long)(off + got));
    return um_fail(UM_EFORMAT, "%s: truncated: expected %s (%lld bytes from byte %lld), found %lld bytes",
                   path, what, (long long)n, (long long)off, (long long)got);
}

/* zlib skips whatever follows a gzip member when it is not another member: the file must
 * end with this member's trailer, whose ISIZE is the stream's length modulo 2^32. (A file
 * of several members is refused too; data sets come as one.) */
static int check_gzip_tail(const char *path, int64_t end, const char *what) {
    FILE *t = fopen(path, "rb");
    unsigned char isize[4];
    if (!t) return um_fail(UM_EIO, "%s: cannot open (%s)", path, strerror(errno));
    int ok = fseek(t, -4, SEEK_END) == 0 && fread(isize, 1, 4, t) == 4;
    fclose(t);
    uint32_t want = (uint32_t)end, got = (uint32_t)isize[0] | (uint32_t)isize[1] << 8 | (uint32_t)isize[2] << 16 | (uint32_t)isize[3] << 24;
    if (!ok || got != want)
        return um_fail(UM_EFORMAT, "%s: unexpected bytes after the gzip stream of %s (trailing garbage, or more than one "
                       "gzip member): the file must end with the stream's trailer", path, what);
    return UM_OK;
}

int um_dio_expect_end(gzFile f, const char *path, int64_t end, const char *what) {
    char extra[4096];
    int64_t more = 0;
    int r;
    while ((r = gzread(f, extra, sizeof extra)) > 0) more += r;
    const char *err = stream_error(f, path);
    if (r < 0 && err)
        return um_fail(UM_EFORMAT, "%s: corrupt gzip stream (%s) after %s", path, err, what);
    if (r < 0)
        return um_fail(UM_EFORMAT, "%s: truncated gzip stream: its end (and checksum) is missing after %s", path, what);
    if (more)
        return um_fail(UM_EFORMAT, "%s: %lld unexpected bytes after %s (expected the file to end at byte %lld)",
                       path, (long long)more, what, (long long)end);
    /* zlib reports a stream cut inside its 8-byte trailer only as Z_BUF_ERROR, with no error
     * from gzread */
    int code;
    gzerror(f, &code);
    if (code == Z_BUF_ERROR)
        return um_fail(UM_EFORMAT, "%s: truncated gzip stream: its end (and checksum) is missing after %s", path, what);
    return gzdirect(f) ? UM_OK : check_gzip_tail(path, end, what);
}

int um_dio_size(const char *path, int64_t *size, int *is_gzip) {
    FILE *f = fopen(path, "rb");
    if (!f) return um_fail(UM_EIO, "%s: cannot open (%s)", path, strerror(errno));
    unsigned char magic[2] = {0, 0}, trailer[4];
    struct stat st;
    int rc = UM_OK;
    if (fstat(fileno(f), &st) != 0) {
        rc = um_fail(UM_EIO, "%s: cannot stat (%s)", path, strerror(errno));
    } else if (st.st_size >= 18 && fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        if (fseek(f, -4, SEEK_END) != 0 || fread(trailer, 1, 4, f) != 4) {
            rc = um_fail(UM_EIO, "%s: cannot read the gzip trailer", path);
        } else {
            *size = (int64_t)((uint32_t)trailer[0] | (uint32_t)trailer[1] << 8 | (uint32_t)trailer[2] << 16 | (uint32_t)trailer[3] << 24);
            *is_gzip = 1;
        }
    } else {
        *size = (int64_t)st.st_size;
        *is_gzip = 0;
    }
    fclose(f);
    return rc;
}

int um_dio_check_declared(const char *path, int64_t total, const char *what) {
    int64_t size;
    int gz;
    struct stat st;
    int rc = um_dio_size(path, &size, &gz);
    if (rc) return rc;
    if (!gz && size == total) return UM_OK;
    if (!gz)
        return um_fail(UM_EFORMAT, "%s: the header declares %s (%lld bytes with the header), the file has %lld bytes", path,
                       what, (long long)total, (long long)size);
    /* deflate expands at most 1032 times; the trailer holds the length modulo 2^32 */
    if (stat(path, &st) != 0) return um_fail(UM_EIO, "%s: cannot stat (%s)", path, strerror(errno));
    if ((uint32_t)total == (uint32_t)size && total / 1032 <= (int64_t)st.st_size) return UM_OK;
    return um_fail(UM_EFORMAT, "%s: the header declares %s (%lld bytes with the header), the gzip trailer says %lld bytes "
                   "(truncated or damaged file, or a wrong header)", path, what, (long long)total, (long long)size);
}

int um_dio_no_memory(const char *path, const char *what, int64_t bytes) {
    return um_fail(UM_ENOMEM, "%s: out of memory for %s (%lld bytes)", path, what, (long long)bytes);
}
