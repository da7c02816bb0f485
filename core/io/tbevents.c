/* TensorBoard event writer: hand-encoded protocol buffers (Event{wall_time=1 double,
 * step=2 int64, file_version=3 string | summary=5 Summary{value=1 Value{tag=1 string,
 * simple_value=2 float}}}) in TFRecord framing with masked CRC32C; um_tb_value wraps a
 * Summary.Value encoded by the caller (histograms, text: lua/umbra/tb.lua). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "alloc.h"
#include "io/crc32c.h"
#include "error.h"
#include "io/tbevents.h"

struct um_tb_writer {
    FILE *f;
    char path[1024];
};

static int put_varint(uint8_t *b, int at, int cap, uint64_t v) {
    do {
        if (at >= cap) return -1;
        uint8_t byte = v & 0x7f;
        v >>= 7;
        b[at++] = byte | (v ? 0x80 : 0);
    } while (v);
    return at;
}

static int put_bytes(uint8_t *b, int at, int cap, const void *p, size_t n) {
    if (at < 0 || at + (int)n > cap) return -1;
    memcpy(b + at, p, n);
    return at + (int)n;
}

/* Event header: wall_time (field 1, fixed64) and step (field 2, varint). */
static int put_event_head(uint8_t *b, int cap, int64_t step, double wall_time) {
    int at = 0;
    b[at++] = (1 << 3) | 1;
    at = put_bytes(b, at, cap, &wall_time, 8);
    if (at < 0 || at >= cap) return -1;
    b[at++] = (2 << 3) | 0;
    return put_varint(b, at, cap, (uint64_t)step);
}

int um_tb_encode_scalar(uint8_t *b, int cap, const char *tag, int64_t step, double wall_time, float value) {
    size_t tl = strlen(tag);
    uint8_t val[600];
    int v = 0;
    if (tl > 512) return -1;
    val[v++] = (1 << 3) | 2;
    v = put_varint(val, v, sizeof val, tl);
    v = put_bytes(val, v, sizeof val, tag, tl);
    if (v < 0 || v >= (int)sizeof val) return -1;
    val[v++] = (2 << 3) | 5;
    v = put_bytes(val, v, sizeof val, &value, 4);
    uint8_t sum[620];
    int s = 0;
    sum[s++] = (1 << 3) | 2;
    s = put_varint(sum, s, sizeof sum, (uint64_t)v);
    s = put_bytes(sum, s, sizeof sum, val, (size_t)v);
    int at = put_event_head(b, cap, step, wall_time);
    if (at < 0 || s < 0 || at >= cap) return -1;
    b[at++] = (5 << 3) | 2;
    at = put_varint(b, at, cap, (uint64_t)s);
    return put_bytes(b, at, cap, sum, (size_t)s);
}

static int write_record(um_tb_writer *w, const uint8_t *data, int n) {
    uint64_t len = (uint64_t)n;
    uint32_t lcrc = um_crc32c_mask(um_crc32c(&len, 8)), dcrc = um_crc32c_mask(um_crc32c(data, (size_t)n));
    if (fwrite(&len, 8, 1, w->f) != 1 || fwrite(&lcrc, 4, 1, w->f) != 1 ||
        fwrite(data, 1, (size_t)n, w->f) != (size_t)n || fwrite(&dcrc, 4, 1, w->f) != 1 || fflush(w->f))
        return um_fail(UM_EIO, "tensorboard: cannot write to %s", w->path);
    return UM_OK;
}

int um_tb_open(um_tb_writer **out, const char *dir) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    um_tb_writer *w = um_calloc(sizeof *w);
    if (!w) return UM_ENOMEM;
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s", dir, (long long)time(NULL), host);
    w->f = fopen(w->path, "wb");
    if (!w->f) {
        int rc = um_fail(UM_EIO, "tensorboard: cannot create %s (does the folder exist?)", w->path);
        um_dealloc(w);
        return rc;
    }
    uint8_t b[128];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int at = put_event_head(b, sizeof b, 0, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    b[at++] = (3 << 3) | 2;
    const char *version = "brain.Event:2";
    at = put_varint(b, at, sizeof b, strlen(version));
    at = put_bytes(b, at, sizeof b, version, strlen(version));
    int rc = write_record(w, b, at);
    if (rc) { um_tb_close(w); return rc; }
    *out = w;
    return UM_OK;
}

int um_tb_scalar(um_tb_writer *w, const char *tag, int64_t step, double wall_time, float value) {
    uint8_t b[1200];
    int n = um_tb_encode_scalar(b, sizeof b, tag, step, wall_time, value);
    if (n < 0) return um_fail(UM_EINVAL, "tensorboard: tag '%.40s...' is too long (at most 512 bytes)", tag);
    return write_record(w, b, n);
}

int um_tb_value(um_tb_writer *w, int64_t step, double wall_time, const void *value, size_t n) {
    /* Event head (< 20 bytes), two tags and two lengths (< 24 bytes), then the value */
    const size_t cap = n + 64;
    if (n > (size_t)1 << 30) return um_fail(UM_EINVAL, "tensorboard: summary value of %zu bytes is too large", n);
    uint8_t *b = um_alloc(cap);
    if (!b) return UM_ENOMEM;
    int at = put_event_head(b, (int)cap, step, wall_time);
    uint8_t len[10];
    int value_len = put_varint(len, 0, sizeof len, n);
    if (at >= 0) {
        b[at++] = (5 << 3) | 2;   /* Event.summary */
        at = put_varint(b, at, (int)cap, (uint64_t)(1 + value_len) + n);
    }
    if (at >= 0) {
        b[at++] = (1 << 3) | 2;   /* Summary.value */
        at = put_varint(b, at, (int)cap, n);
    }
    at = at < 0 ? -1 : put_bytes(b, at, (int)cap, value, n);
    int rc = at < 0 ? um_fail(UM_EINVAL, "tensorboard: cannot encode a summary value") : write_record(w, b, at);
    um_dealloc(b);
    return rc;
}

const char *um_tb_path(const um_tb_writer *w) { return w->path; }

void um_tb_close(um_tb_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    um_dealloc(w);
}
