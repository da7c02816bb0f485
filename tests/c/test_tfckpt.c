/* TensorFlow checkpoint reading: CRC32C vectors, a hand-built index/data pair (always run)
 * read back and then corrupted or truncated, and, when UMBRA_PAPER_MODELS names the folder
 * of the authors' released models, the nine real checkpoints. */
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>
#include "check_main.h"
#include "io/crc32c.h"
#include "io/sstable.h"
#include "io/tfckpt.h"

/* ---- a fixed-capacity byte buffer to build the fixture ---- */
typedef struct { uint8_t b[4096]; size_t n; } bytes;

static void put(bytes *o, const void *p, size_t n) {
    ck_assert(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_u8(bytes *o, uint8_t v) { put(o, &v, 1); }
static void put_varint(bytes *o, uint64_t v) {
    while (v >= 0x80) { put_u8(o, (uint8_t)(v | 0x80)); v >>= 7; }
    put_u8(o, (uint8_t)v);
}
static void put_le32(bytes *o, uint32_t v) { for (int i = 0; i < 4; i++) put_u8(o, (uint8_t)(v >> 8 * i)); }

/* One block entry; the caller gives the shared prefix length. */
static void put_entry(bytes *blk, const char *key, size_t shared, const bytes *val) {
    size_t klen = strlen(key);
    put_varint(blk, shared);
    put_varint(blk, klen - shared);
    put_varint(blk, val->n);
    put(blk, key + shared, klen - shared);
    put(blk, val->b, val->n);
}

/* Append a finished block (contents + restarts) and its trailer; return its handle. */
static void put_block(bytes *file, const bytes *blk, const uint32_t *restarts, int nrest,
                      uint64_t *off, uint64_t *size) {
    bytes b = *blk;
    for (int i = 0; i < nrest; i++) put_le32(&b, restarts[i]);
    put_le32(&b, (uint32_t)nrest);
    *off = file->n;
    *size = b.n;
    put(file, b.b, b.n);
    uint8_t type = 0;
    put_u8(file, type);
    put_le32(file, um_crc32c_mask(um_crc32c_extend(um_crc32c(b.b, b.n), &type, 1)));
}

/* BundleEntryProto: dtype, shape, offset, size, masked crc32c of the bytes. */
static void entry_proto(bytes *v, int dtype, int ndim, const int64_t *size, uint64_t off,
                        const void *data, size_t n) {
    v->n = 0;
    put_u8(v, 0x08); put_varint(v, (uint64_t)dtype);
    bytes shape = {.n = 0};
    for (int d = 0; d < ndim; d++) {
        bytes dim = {.n = 0};
        put_u8(&dim, 0x08); put_varint(&dim, (uint64_t)size[d]);
        put_u8(&shape, 0x12); put_varint(&shape, dim.n); put(&shape, dim.b, dim.n);
    }
    put_u8(v, 0x12); put_varint(v, shape.n); put(v, shape.b, shape.n);
    if (off) { put_u8(v, 0x20); put_varint(v, off); }
    put_u8(v, 0x28); put_varint(v, n);
    put_u8(v, 0x35); put_le32(v, um_crc32c_mask(um_crc32c(data, n)));
}

static const float fx_bias[3] = {0.5f, -1.5f, 2.25f};
static const float fx_weights[6] = {1, 2, 3, 4, 5, 6};
static const int32_t fx_step = 39000;
static const double fx_scale[2] = {0.25, -8.0};

typedef struct {
    char dir[64], prefix[96], index[128], data[128];
    size_t data_block_off, data_block_size;   /* where the data block lies in the .index */
} fixture;

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* Variables (sorted): a/bias [3] f32, a/scale [2] f64, a/weights [2,3] f32, step int32 scalar.
 * Restart interval 2, so 'a/scale' shares its prefix and 'a/weights' starts a restart. */
static void make_fixture(fixture *fx) {
    ck_mkdtemp(fx->dir, sizeof fx->dir, "tfckpt");
    snprintf(fx->prefix, sizeof fx->prefix, "%s/model-1", fx->dir);
    snprintf(fx->index, sizeof fx->index, "%s.index", fx->prefix);
    snprintf(fx->data, sizeof fx->data, "%s.data-00000-of-00001", fx->prefix);
    bytes data = {.n = 0}, blk = {.n = 0}, v = {.n = 0}, file = {.n = 0};
    int64_t s3[1] = {3}, s2[1] = {2}, s23[2] = {2, 3};
    put(&data, fx_bias, sizeof fx_bias);
    put(&data, fx_scale, sizeof fx_scale);
    put(&data, fx_weights, sizeof fx_weights);
    put(&data, &fx_step, sizeof fx_step);
    write_file(fx->data, data.b, data.n);
    put_u8(&v, 0x08); put_varint(&v, 1);                     /* header: num_shards = 1 */
    put_entry(&blk, "", 0, &v);
    entry_proto(&v, UM_TF_FLOAT, 1, s3, 0, fx_bias, sizeof fx_bias);
    put_entry(&blk, "a/bias", 0, &v);
    uint32_t restarts[2] = {0, (uint32_t)blk.n};
    entry_proto(&v, UM_TF_DOUBLE, 1, s2, 12, fx_scale, sizeof fx_scale);
    put_entry(&blk, "a/scale", 0, &v);
    entry_proto(&v, UM_TF_FLOAT, 2, s23, 28, fx_weights, sizeof fx_weights);
    put_entry(&blk, "a/weights", 2, &v);
    entry_proto(&v, UM_TF_INT32, 0, NULL, 52, &fx_step, sizeof fx_step);
    put_entry(&blk, "step", 0, &v);
    uint64_t doff, dsize, moff, msize, ioff, isize;
    put_block(&file, &blk, restarts, 2, &doff, &dsize);
    fx->data_block_off = doff;
    fx->data_block_size = dsize;
    bytes empty = {.n = 0}, index = {.n = 0}, handle = {.n = 0};
    uint32_t zero = 0;
    put_block(&file, &empty, &zero, 1, &moff, &msize);
    put_varint(&handle, doff); put_varint(&handle, dsize);
    put_entry(&index, "t", 0, &handle);
    put_block(&file, &index, &zero, 1, &ioff, &isize);
    size_t foot = file.n;
    put_varint(&file, moff); put_varint(&file, msize);
    put_varint(&file, ioff); put_varint(&file, isize);
    while (file.n < foot + 40) put_u8(&file, 0);
    put_le32(&file, (uint32_t)UM_SSTABLE_MAGIC);
    put_le32(&file, (uint32_t)(UM_SSTABLE_MAGIC >> 32));
    write_file(fx->index, file.b, file.n);
}

static void drop_fixture(fixture *fx) {
    unlink(fx->index);
    unlink(fx->data);
    rmdir(fx->dir);
}

/* Cut a file to its first n bytes; invert the bits of the byte at offset at. */
static void truncate_file(const char *path, long n) { ck_assert(truncate(path, n) == 0); }
static void flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    ck_assert(f != NULL);
    ck_assert(fseek(f, at, SEEK_SET) == 0);
    int c = fgetc(f);
    ck_assert(c != EOF);
    ck_assert(fseek(f, at, SEEK_SET) == 0);
    fputc(c ^ 0xff, f);
    fclose(f);
}

#define ck_msg_has(s) \
    ck_assert_msg(strstr(um_last_error(), (s)) != NULL, "message '%s' lacks '%s'", um_last_error(), (s))

START_TEST(crc32c_vectors) {
    uint8_t buf[32];
    ck_assert_uint_eq(um_crc32c("123456789", 9), 0xe3069283u);
    memset(buf, 0, 32);
    ck_assert_uint_eq(um_crc32c(buf, 32), 0x8a9136aau);
    memset(buf, 0xff, 32);
    ck_assert_uint_eq(um_crc32c(buf, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    ck_assert_uint_eq(um_crc32c(buf, 32), 0x46dd794eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(um_crc32c(buf, 32), 0x113fdb5cu);
    ck_assert_uint_eq(um_crc32c("", 0), 0);
    uint32_t c = um_crc32c("123456789", 9);
    ck_assert_uint_ne(um_crc32c_mask(c), c);
    ck_assert_uint_eq(um_crc32c_unmask(um_crc32c_mask(c)), c);
    ck_assert_uint_eq(um_crc32c_mask(c), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}
END_TEST

/* The fast path and the table agree at every length and alignment; extend composes. */
START_TEST(crc32c_paths_agree) {
    uint8_t buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (uint8_t)(i * 131 + 7);
    for (int off = 0; off < 8; off++)
        for (int n = 0; n < 260; n += 13) {
            uint32_t a = um_crc32c(buf + off, (size_t)n);
            ck_assert_uint_eq(a, um_crc32c_extend_portable(0, buf + off, (size_t)n));
            ck_assert_uint_eq(a, um_crc32c_extend(um_crc32c(buf + off, (size_t)n / 3), buf + off + n / 3,
                                                  (size_t)n - (size_t)n / 3));
        }
}
END_TEST

START_TEST(fixture_reads_back) {
    fixture fx;
    make_fixture(&fx);
    int64_t live = um_live_bytes();
    um_tfckpt *ck;
    ck_ok(um_tfckpt_open(&ck, fx.prefix));
    ck_assert_int_eq(um_tfckpt_count(ck), 4);
    const char *name;
    int dtype, ndim;
    int64_t sz[UM_MAXDIM];
    ck_ok(um_tfckpt_entry(ck, 2, &name, &dtype, &ndim, sz));
    ck_assert_str_eq(name, "a/weights");
    ck_assert_int_eq(dtype, UM_TF_FLOAT);
    ck_assert_int_eq(ndim, 2);
    ck_assert(sz[0] == 2 && sz[1] == 3);
    ck_ok(um_tfckpt_entry(ck, 1, &name, NULL, NULL, NULL));
    ck_assert_str_eq(name, "a/scale");
    ck_fails(um_tfckpt_entry(ck, 4, &name, NULL, NULL, NULL), UM_EINVAL);
    ck_assert_int_eq(um_tfckpt_find(ck, "step"), 3);
    ck_assert_int_eq(um_tfckpt_find(ck, "a"), -1);
    um_tensor *w, *b, *s, *st, *none;
    ck_ok(um_tfckpt_read(ck, "a/weights", &w));
    ck_assert(w->dtype == UM_FLOAT32 && w->ndim == 2 && w->size[0] == 2 && w->size[1] == 3);
    for (int i = 0; i < 6; i++) ck_assert(um_f32(w)[i] == fx_weights[i]);
    ck_ok(um_tfckpt_read(ck, "a/bias", &b));
    for (int i = 0; i < 3; i++) ck_assert(um_f32(b)[i] == fx_bias[i]);
    ck_ok(um_tfckpt_read(ck, "a/scale", &s));
    ck_assert(s->dtype == UM_FLOAT32 && um_f32(s)[0] == 0.25f && um_f32(s)[1] == -8.0f);
    ck_ok(um_tfckpt_read(ck, "step", &st));
    ck_assert(st->dtype == UM_INT64 && st->ndim == 0 && um_i64(st)[0] == 39000);
    ck_fails(um_tfckpt_read(ck, "nope", &none), UM_EINVAL);
    ck_assert(none == NULL);
    ck_msg_has("no variable 'nope'");
    um_tensor_release(w); um_tensor_release(b); um_tensor_release(s); um_tensor_release(st);
    um_tfckpt_close(ck);
    ck_assert_int_eq(um_live_bytes(), live);
    drop_fixture(&fx);
}
END_TEST

START_TEST(fixture_block_crc) {
    fixture fx;
    make_fixture(&fx);
    flip_byte(fx.index, (long)fx.data_block_off + 9);
    um_tfckpt *ck;
    int64_t live = um_live_bytes();
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EFORMAT);
    ck_assert(ck == NULL);
    ck_msg_has("block CRC mismatch");
    ck_msg_has(fx.index);
    ck_assert_int_eq(um_live_bytes(), live);
    drop_fixture(&fx);
}
END_TEST

START_TEST(fixture_tensor_crc) {
    fixture fx;
    make_fixture(&fx);
    flip_byte(fx.data, 30);                 /* inside a/weights */
    um_tfckpt *ck;
    um_tensor *t;
    int64_t live = um_live_bytes();
    ck_ok(um_tfckpt_open(&ck, fx.prefix));
    ck_ok(um_tfckpt_read(ck, "a/bias", &t));
    um_tensor_release(t);
    ck_fails(um_tfckpt_read(ck, "a/weights", &t), UM_EFORMAT);
    ck_assert(t == NULL);
    ck_msg_has("tensor CRC mismatch for variable 'a/weights'");
    um_tfckpt_close(ck);
    ck_assert_int_eq(um_live_bytes(), live);
    drop_fixture(&fx);
}
END_TEST

START_TEST(fixture_truncated) {
    fixture fx;
    make_fixture(&fx);
    int64_t live = um_live_bytes();
    um_tfckpt *ck;
    truncate_file(fx.data, 40);
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EFORMAT);
    ck_msg_has("shorter than variable 'a/weights' needs");
    ck_msg_has(fx.data);
    FILE *f = fopen(fx.index, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    truncate_file(fx.index, n - 5);
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EFORMAT);
    ck_msg_has("bad magic");
    truncate_file(fx.index, 20);
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EFORMAT);
    ck_msg_has("truncated: 20 bytes");
    unlink(fx.index);
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EIO);
    ck_msg_has("cannot open TensorFlow checkpoint index");
    ck_assert_int_eq(um_live_bytes(), live);
    drop_fixture(&fx);
}
END_TEST

/* A snappy block passes its CRC and is then refused by name; so is an unknown type. */
START_TEST(fixture_compressed) {
    fixture fx;
    make_fixture(&fx);
    FILE *f = fopen(fx.index, "r+b");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    uint8_t *blk = buf + fx.data_block_off, type = 1;
    size_t end = fx.data_block_size;
    blk[end] = type;
    uint32_t crc = um_crc32c_mask(um_crc32c_extend(um_crc32c(blk, end), &type, 1));
    for (int i = 0; i < 4; i++) blk[end + 1 + i] = (uint8_t)(crc >> 8 * i);
    fseek(f, 0, SEEK_SET);
    fwrite(buf, 1, n, f);
    fclose(f);
    int64_t live = um_live_bytes();
    um_tfckpt *ck;
    ck_fails(um_tfckpt_open(&ck, fx.prefix), UM_EFORMAT);
    ck_msg_has("snappy");
    ck_assert_int_eq(um_live_bytes(), live);
    drop_fixture(&fx);
}
END_TEST

/* Every allocation of open + read may fail: a clean error and nothing leaked. */
START_TEST(fixture_alloc_failures) {
    fixture fx;
    make_fixture(&fx);
    int64_t live = um_live_bytes();
    int succeeded = 0;
    for (int k = 1; k < 200 && !succeeded; k++) {
        um_tfckpt *ck = NULL;
        um_tensor *t = NULL;
        um_alloc_fail_after(k);
        int rc = um_tfckpt_open(&ck, fx.prefix);
        if (rc == UM_OK) rc = um_tfckpt_read(ck, "step", &t);
        um_alloc_fail_after(0);
        if (rc == UM_OK) succeeded = 1;
        else ck_assert_int_eq(rc, UM_ENOMEM);
        um_tensor_release(t);
        um_tfckpt_close(ck);
        ck_assert_int_eq(um_live_bytes(), live);
    }
    ck_assert(succeeded);
    drop_fixture(&fx);
}
END_TEST

/* ---- the authors' released models ---- */

static int find_prefix(const char *root, const char *sub, char *out, size_t n) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 6 && strcmp(e->d_name + l - 6, ".index") == 0 &&
            snprintf(out, n, "%s/%s", dir, e->d_name) < (int)n) {
            out[strlen(out) - 6] = 0;
            found = 0;
        }
    }
    closedir(d);
    return found;
}

static const char *model_dirs[9] = {"svhn_plain", "svhn_ceda", "svhn_acet", "cifar10_plain",
    "cifar10_ceda", "cifar10_acet", "cifar100_plain", "cifar100_ceda", "cifar100_acet"};

static int is_trainable(const char *name) {
    size_t l = strlen(name);
    return strcmp(name, "Variable") != 0 && !strstr(name, "moving_mean") &&
           !strstr(name, "moving_variance") && !(l >= 9 && strcmp(name + l - 9, "/Momentum") == 0);
}

START_TEST(paper_models_read) {
    const char *root = getenv("UMBRA_PAPER_MODELS");
    char prefix[1024];
    ck_assert_msg(find_prefix(root, model_dirs[_i], prefix, sizeof prefix) == 0,
                  "no .index in %s/%s", root, model_dirs[_i]);
    um_tfckpt *ck;
    ck_ok(um_tfckpt_open(&ck, prefix));
    ck_assert_int_eq(um_tfckpt_count(ck), 157);
    int64_t trainable = 0;
    for (int i = 0; i < um_tfckpt_count(ck); i++) {
        const char *name;
        um_tensor *t;
        ck_ok(um_tfckpt_entry(ck, i, &name, NULL, NULL, NULL));
        ck_ok(um_tfckpt_read(ck, name, &t));       /* verifies every tensor's CRC */
        if (is_trainable(name)) trainable += um_numel(t);
        um_tensor_release(t);
    }
    int k100 = strncmp(model_dirs[_i], "cifar100", 8) == 0;
    ck_assert_int_eq(trainable, k100 ? 275572 : 269722);
    um_tensor *step, *w;
    ck_ok(um_tfckpt_read(ck, "Variable", &step));
    ck_assert(step->dtype == UM_INT64 && step->ndim == 0);
    ck_assert_int_eq(um_i64(step)[0], strncmp(model_dirs[_i], "svhn", 4) == 0 ? 57200 : 39000);
    ck_ok(um_tfckpt_read(ck, "block_init/conv/weights", &w));
    ck_assert(w->ndim == 4 && w->size[0] == 3 && w->size[1] == 3 && w->size[2] == 3 && w->size[3] == 16);
    um_tensor_release(step);
    um_tensor_release(w);
    um_tfckpt_close(ck);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ck_assert(fwrite(buf, 1, n, b) == n);
    fclose(a);
    fclose(b);
}

START_TEST(paper_model_corrupt_copy) {
    char prefix[1024], src[1100], dir[64], dst[300], cp[256], data[300];
    ck_assert(find_prefix(getenv("UMBRA_PAPER_MODELS"), "cifar10_acet", prefix, sizeof prefix) == 0);
    ck_mkdtemp(dir, sizeof dir, "tfckpt");
    snprintf(cp, sizeof cp, "%s/m-100", dir);
    snprintf(src, sizeof src, "%s.index", prefix);
    snprintf(dst, sizeof dst, "%s.index", cp);
    copy_file(src, dst);
    snprintf(src, sizeof src, "%s.data-00000-of-00001", prefix);
    snprintf(data, sizeof data, "%s.data-00000-of-00001", cp);
    copy_file(src, data);
    um_tfckpt *ck;
    um_tensor *t;
    /* one flipped byte in the middle of the data: exactly one variable fails, by name */
    flip_byte(data, 1000000);
    ck_ok(um_tfckpt_open(&ck, cp));
    int bad = 0;
    for (int j = 0; j < um_tfckpt_count(ck); j++) {
        const char *name;
        um_tfckpt_entry(ck, j, &name, NULL, NULL, NULL);
        if (um_tfckpt_read(ck, name, &t) == UM_EFORMAT) {
            bad++;
            ck_msg_has("tensor CRC mismatch for variable '");
            ck_msg_has(name);
        }
        um_tensor_release(t);
    }
    ck_assert_int_eq(bad, 1);
    um_tfckpt_close(ck);
    unlink(dst);
    unlink(data);
    rmdir(dir);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("tfckpt");
    TCase *tc = tcase_create("tfckpt");
    tcase_add_test(tc, crc32c_vectors);
    tcase_add_test(tc, crc32c_paths_agree);
    tcase_add_test(tc, fixture_reads_back);
    tcase_add_test(tc, fixture_block_crc);
    tcase_add_test(tc, fixture_tensor_crc);
    tcase_add_test(tc, fixture_truncated);
    tcase_add_test(tc, fixture_compressed);
    tcase_add_test(tc, fixture_alloc_failures);
    const char *root = getenv("UMBRA_PAPER_MODELS");
    if (root && *root) {
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, paper_models_read, 0, 9);
        tcase_add_test(tc, paper_model_corrupt_copy);
    } else {
        printf("SKIP tfckpt: UMBRA_PAPER_MODELS not set\n");
        fflush(stdout);
    }
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
