/* Readers under hostile files (issue "trust under faults", items 8-9): a gzip stream whose
 * 8-byte trailer is cut or that is followed by garbage is refused; an IDX header claiming
 * far more images than its file holds is refused before its 1.6 GB are reserved; a PNG
 * declaring 100000x100000 pixels is refused by the stated cap (before: 40 GB asked for); an
 * SVHN .mat declaring 307 GB is refused before matio allocates it. */
#define _GNU_SOURCE  /* memmem */
#include <matio.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "check_main.h"
#include "data/data.h"

static char dir[64], paths[4][128];

static void setup(void) {
    ck_mkdtemp(dir, sizeof dir, "test_dataf");
    for (int i = 0; i < 4; i++) snprintf(paths[i], sizeof paths[i], "%s/f%d", dir, i);
}
static void teardown(void) { ck_rmtree(dir); }

static void be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static void put(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* n images of 4x4 and their labels as IDX; *gz (size *gzn) the images gzip-compressed. */
static void idx_pair(const char *im, const char *lb, uint32_t declared, int n, uint8_t *gz, size_t *gzn) {
    uint8_t buf[16 + 64 * 16];
    be32(buf, 0x803); be32(buf + 4, declared); be32(buf + 8, 4); be32(buf + 12, 4);
    for (int k = 0; k < n * 16; k++) buf[16 + k] = (uint8_t)k;
    put(im, buf, 16 + (size_t)n * 16);
    uint8_t lab[8 + 64];
    be32(lab, 0x801); be32(lab + 4, (uint32_t)n);
    memset(lab + 8, 1, (size_t)n);
    put(lb, lab, 8 + (size_t)n);
    if (gz) {
        z_stream s = {0};
        ck_assert_int_eq(deflateInit2(&s, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        s.next_in = buf; s.avail_in = 16 + (uInt)n * 16; s.next_out = gz; s.avail_out = (uInt)*gzn;
        ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
        *gzn = s.total_out;
        deflateEnd(&s);
    }
}

START_TEST(gzip_trailer_cut_and_trailing_garbage_refused) {
    uint8_t gz[4096];
    size_t n = sizeof gz;
    um_dataset *ds = NULL;
    idx_pair(paths[0], paths[1], 20, 20, gz, &n);
    put(paths[2], gz, n);
    ck_ok(um_read_idx(&ds, paths[2], paths[1], "x", 0, 0, 10));
    um_dataset_free(ds);
    put(paths[2], gz, n - 8);
    ck_fails(um_read_idx(&ds, paths[2], paths[1], "x", 0, 0, 10), UM_EFORMAT);
    ck_assert_msg(strstr(um_last_error(), "truncated"), "%s", um_last_error());
    memcpy(gz + n, "garbage!", 8);
    put(paths[2], gz, n + 8);
    ck_fails(um_read_idx(&ds, paths[2], paths[1], "x", 0, 0, 10), UM_EFORMAT);
    /* caught by the length check of the header (trailer's ISIZE) or after the stream */
    ck_assert_msg(strstr(um_last_error(), "trailing garbage") || strstr(um_last_error(), "the gzip trailer says"), "%s",
                  um_last_error());
}
END_TEST

START_TEST(idx_declared_count_checked_before_allocating) {
    um_dataset *ds = NULL;
    uint8_t gz[4096];
    size_t n = sizeof gz;
    idx_pair(paths[0], paths[1], 100000000u, 20, gz, &n);
    put(paths[2], gz, n);
    for (int k = 0; k < 2; k++) {
        int64_t live = um_live_bytes();
        int rc = um_read_idx(&ds, paths[k ? 2 : 0], paths[1], "x", 0, 0, 10);
        ck_assert_int_eq(um_live_bytes(), live);
        ck_assert_int_eq(rc, UM_EFORMAT);
        ck_assert_msg(strstr(um_last_error(), "declares 100000000 images of 4x4 pixels"), "%s", um_last_error());
    }
}
END_TEST

static void chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t b[4];
    be32(b, n);
    fwrite(b, 1, 4, f);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    fwrite(type, 1, 4, f);
    if (n) { fwrite(data, 1, n, f); crc = crc32(crc, data, n); }
    be32(b, (uint32_t)crc);
    fwrite(b, 1, 4, f);
}

START_TEST(png_over_the_cap_refused) {
    char folder[160], file[200];
    snprintf(folder, sizeof folder, "%s/pngs", dir);
    ck_assert_int_eq(mkdir(folder, 0755), 0);
    snprintf(file, sizeof file, "%s/huge.png", folder);
    FILE *f = fopen(file, "wb");
    const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fwrite(sig, 1, 8, f);
    uint8_t ihdr[13] = {0};
    be32(ihdr, 100000); be32(ihdr + 4, 100000);
    ihdr[8] = 8; ihdr[9] = 6;   /* 8-bit RGBA */
    chunk(f, "IHDR", ihdr, 13);
    uint8_t idat[16];
    uLongf n = sizeof idat;
    ck_assert_int_eq(compress(idat, &n, (const Bytef *)"", 0), Z_OK);
    chunk(f, "IDAT", idat, (uint32_t)n);
    chunk(f, "IEND", NULL, 0);
    fclose(f);
    um_dataset *ds = NULL;
    int rc = um_read_png_folder(&ds, folder, 32, 32, 0, "x");
    ck_assert_int_eq(rc, UM_EFORMAT);
    ck_assert_msg(strstr(um_last_error(), "100000x100000 pixels, larger than this reader's cap"), "%s", um_last_error());
}
END_TEST

/* Found by the svhn fuzz target: a .mat whose X declares 32x32x3x100000000 (307 GB) made
 * matio try to allocate it (under ASan: an abort) before any check. */
START_TEST(svhn_declared_size_checked_before_allocating) {
    mat_t *mat = Mat_CreateVer(paths[0], NULL, MAT_FT_MAT5);
    ck_assert_ptr_nonnull(mat);
    uint8_t x[3072] = {0};
    double y = 1;
    size_t dx[4] = {32, 32, 3, 1}, dy[2] = {1, 1};
    matvar_t *vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, dx, x, 0);
    matvar_t *vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, &y, 0);
    ck_assert_int_eq(Mat_VarWrite(mat, vx, MAT_COMPRESSION_NONE), 0);
    ck_assert_int_eq(Mat_VarWrite(mat, vy, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(vx);
    Mat_VarFree(vy);
    Mat_Close(mat);
    um_dataset *ds = NULL;
    ck_ok(um_read_svhn(&ds, paths[0], "svhn"));
    um_dataset_free(ds);
    /* the dimensions array of X: int32 32, 32, 3, 1; make the last one 1e8 */
    FILE *f = fopen(paths[0], "r+b");
    ck_assert_ptr_nonnull(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    const int32_t dims[4] = {32, 32, 3, 1};
    uint8_t *at = memmem(buf, n, dims, sizeof dims);
    ck_assert_ptr_nonnull(at);
    int32_t big = 100000000;
    fseek(f, (long)(at - buf) + 12, SEEK_SET);
    ck_assert_int_eq(fwrite(&big, 4, 1, f), 1);
    fclose(f);
    ds = NULL;
    ck_fails(um_read_svhn(&ds, paths[0], "svhn"), UM_EFORMAT);
    ck_assert_ptr_null(ds);
    ck_assert_msg(strstr(um_last_error(), "declares 32x32x3x100000000 uint8"), "message: %s", um_last_error());
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("data_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gzip_trailer_cut_and_trailing_garbage_refused);
    tcase_add_test(tc, idx_declared_count_checked_before_allocating);
    tcase_add_test(tc, png_over_the_cap_refused);
    tcase_add_test(tc, svhn_declared_size_checked_before_allocating);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
