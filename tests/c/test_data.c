/* Data set readers on fixture files written here (IDX plain and gzip, CIFAR-10/100
 * binary, an SVHN .mat made with matio, PNG folders), their refusals of wrong, truncated
 * and corrupt files, with no leak on any error path (batches, resizing and the real
 * files are in test_data_batch.c). */
#include <matio.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "check_main.h"
#include "data/data.h"

static char dir[64];
static char pathbuf[8][256];

/* A fresh temporary folder per test (tests are forked). */
static void setup(void) {
    ck_mkdtemp(dir, sizeof dir, "test_data");
}
static void teardown(void) { ck_rmtree(dir); }

static const char *tmp_path(int slot, const char *name) {
    snprintf(pathbuf[slot], sizeof pathbuf[slot], "%s/%s", dir, name);
    return pathbuf[slot];
}

static void write_file(const char *path, const void *data, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n) ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

static void be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* IDX pair of n images side x side: pixel (i, r, c) = i*50 + r*side + c, label i % 3 + lmin.
 * extra bytes are appended to the image file; cut bytes are dropped from its end. */
static void write_idx(const char *images, const char *labels, int n, int side, int lmin, int gz, int cut, int extra) {
    uint8_t buf[4096];
    be32(buf, 0x803); be32(buf + 4, n); be32(buf + 8, side); be32(buf + 12, side);
    size_t len = 16;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < side * side; k++) buf[len++] = (uint8_t)(i * 50 + k);
    for (int k = 0; k < extra; k++) buf[len++] = 7;
    write_file(images, buf, len - cut, gz);
    be32(buf, 0x801); be32(buf + 4, n);
    for (int i = 0; i < n; i++) buf[8 + i] = (uint8_t)(i % 3 + lmin);
    write_file(labels, buf, 8 + n, gz);
}

/* The call fails with code, its message contains each of up to two fragments, and the
 * allocator is back where it started. */
#define ck_refused(call, code, frag1, frag2) do {                                        \
    int64_t live0_ = um_live_bytes();                                                   \
    ck_fails(call, code);                                                               \
    ck_assert_msg(strstr(um_last_error(), frag1), "message '%s' lacks '%s'", um_last_error(), frag1); \
    ck_assert_msg(strstr(um_last_error(), frag2), "message '%s' lacks '%s'", um_last_error(), frag2); \
    ck_assert_int_eq(um_live_bytes(), live0_);                                          \
} while (0)

START_TEST(idx_plain_and_gzip) {
    for (int gz = 0; gz < 2; gz++) {
        const char *im = tmp_path(0, gz ? "i.gz" : "i"), *lb = tmp_path(1, gz ? "l.gz" : "l");
        write_idx(im, lb, 4, 3, 0, gz, 0, 0);
        um_dataset *ds;
        ck_ok(um_read_idx(&ds, im, lb, "toy train", 0, 0, 10));
        ck_assert_int_eq(ds->n, 4);
        ck_assert_int_eq(ds->c * ds->h * ds->w, 9);
        ck_assert_int_eq(ds->pixels[2 * 9 + 1 * 3 + 2], 100 + 5);
        ck_assert_int_eq(ds->labels[3], 0);
        ck_assert_int_eq(ds->labels[2], 2);
        char buf[128];
        ck_assert_str_eq(um_dataset_describe(ds, buf, sizeof buf), "toy train: 4 images 1x3x3, 10 classes");
        int64_t counts[10];
        um_dataset_class_counts(ds, counts);
        ck_assert_int_eq(counts[0], 2);
        ck_assert_int_eq(counts[1], 1);
        um_dataset_free(ds);
    }
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(idx_transposed_letters) {
    const char *im = tmp_path(0, "i"), *lb = tmp_path(1, "l");
    write_idx(im, lb, 3, 4, 1, 1, 0, 0);
    um_dataset *ds;
    ck_ok(um_read_idx(&ds, im, lb, "letters", 1, 1, 26));
    /* stored (r, c) = r*4 + c; transposed, pixel (r, c) holds the stored (c, r) */
    ck_assert_int_eq(ds->pixels[16 + 1 * 4 + 3], 50 + 3 * 4 + 1);
    ck_assert_int_eq(ds->labels[0], 0);   /* label 1 in the file */
    ck_assert_int_eq(ds->labels[2], 2);
    um_dataset_free(ds);
}
END_TEST

START_TEST(idx_refusals) {
    const char *im = tmp_path(0, "i"), *lb = tmp_path(1, "l"), *missing = tmp_path(2, "nothing");
    um_dataset *ds = NULL;
    write_idx(im, lb, 4, 3, 0, 0, 5, 0);
    ck_refused(um_read_idx(&ds, im, lb, "x", 0, 0, 10), UM_EFORMAT, "the header declares 4 images of 3x3 pixels (52 bytes with the header)", "the file has 47 bytes");
    for (int gz = 0; gz < 2; gz++) {
        write_idx(im, lb, 4, 3, 0, gz, 0, 2);
        ck_refused(um_read_idx(&ds, im, lb, "x", 0, 0, 10), UM_EFORMAT, "declares 4 images of 3x3 pixels (52 bytes with the header)", im);
    }
    write_idx(im, lb, 4, 3, 0, 1, 0, 0);
    ck_refused(um_read_idx(&ds, lb, lb, "x", 0, 0, 10), UM_EFORMAT, "expected magic number 0x00000803, found 0x00000801", lb);
    ck_refused(um_read_idx(&ds, im, im, "x", 0, 0, 10), UM_EFORMAT, "expected magic number 0x00000801", im);
    ck_refused(um_read_idx(&ds, im, lb, "x", 0, 0, 2), UM_EFORMAT, "label 2 of image 2 outside 0..1", lb);
    ck_refused(um_read_idx(&ds, missing, lb, "x", 0, 0, 10), UM_EIO, missing, "cannot open");
    ck_refused(um_read_idx(&ds, im, missing, "x", 0, 0, 10), UM_EIO, missing, "cannot open");
    write_idx(tmp_path(3, "i5"), tmp_path(4, "l5"), 5, 3, 0, 0, 0, 0);
    ck_refused(um_read_idx(&ds, im, pathbuf[4], "x", 0, 0, 10), UM_EFORMAT, "expected 4 labels", "says 5");
    /* a gzip file cut in the middle of its stream, and one with a damaged byte */
    uint8_t big[16 + 40 * 784];
    be32(big, 0x803); be32(big + 4, 40); be32(big + 8, 28); be32(big + 12, 28);
    for (size_t k = 16; k < sizeof big; k++) big[k] = (uint8_t)(k * 2654435761u >> 13);
    write_file(im, big, sizeof big, 1);
    FILE *f = fopen(im, "rb");
    uint8_t gzbytes[65536];
    size_t n = fread(gzbytes, 1, sizeof gzbytes, f);
    fclose(f);
    write_file(im, gzbytes, n / 2, 0);
    ck_refused(um_read_idx(&ds, im, lb, "x", 0, 0, 10), UM_EFORMAT, im, "truncated");
    gzbytes[n / 2] ^= 0x55;
    write_file(im, gzbytes, n, 0);
    ck_refused(um_read_idx(&ds, im, lb, "x", 0, 0, 10), UM_EFORMAT, im, "corrupt gzip stream");
    ck_assert_ptr_null(ds);
}
END_TEST

/* CIFAR records: label bytes then 3072 pixels, pixel k of record i = (i*31 + k) mod 256. */
static void write_cifar(const char *path, int n, int label_bytes, int first_label, int gz, int cut) {
    size_t rec = (size_t)label_bytes + 3072, len = (size_t)n * rec;
    uint8_t *buf = malloc(len);
    for (int i = 0; i < n; i++) {
        uint8_t *r = buf + i * rec;
        r[0] = (uint8_t)(first_label + i);
        if (label_bytes == 2) { r[0] = 99; r[1] = (uint8_t)(first_label + i); }
        for (int k = 0; k < 3072; k++) r[label_bytes + k] = (uint8_t)(i * 31 + k);
    }
    write_file(path, buf, len - cut, gz);
    free(buf);
}

START_TEST(cifar_files) {
    const char *a = tmp_path(0, "a.bin"), *b = tmp_path(1, "b.bin.gz");
    write_cifar(a, 3, 1, 0, 0, 0);
    write_cifar(b, 2, 1, 7, 1, 0);
    const char *paths[2] = {a, b};
    um_dataset *ds;
    ck_ok(um_read_cifar(&ds, 2, paths, NULL, 1, 10, "cifar10 toy"));
    ck_assert_int_eq(ds->n, 5);
    ck_assert_int_eq(ds->c, 3);
    ck_assert_int_eq(ds->labels[3], 7);
    ck_assert_int_eq(ds->pixels[(size_t)4 * 3072 + 1024 + 5], (uint8_t)(31 + 1024 + 5));
    um_dataset_free(ds);
    const int64_t expect[2] = {3, 2};
    ck_ok(um_read_cifar(&ds, 2, paths, expect, 1, 10, "cifar10 toy"));
    um_dataset_free(ds);
    write_cifar(a, 3, 2, 50, 1, 0);
    ck_ok(um_read_cifar(&ds, 1, paths, NULL, 2, 100, "cifar100 toy"));
    ck_assert_int_eq(ds->labels[2], 52);   /* the fine label, not the coarse 99 */
    um_dataset_free(ds);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(cifar_refusals) {
    const char *a = tmp_path(0, "a.bin"), *paths[1] = {a};
    um_dataset *ds = NULL;
    const int64_t three[1] = {3}, four[1] = {4};
    write_cifar(a, 3, 1, 0, 0, 100);
    ck_refused(um_read_cifar(&ds, 1, paths, NULL, 1, 10, "x"), UM_EFORMAT, "whole number of 3073-byte records", "found 9119 bytes");
    ck_refused(um_read_cifar(&ds, 1, paths, three, 1, 10, "x"), UM_EFORMAT, "expected 3 records of 3073 bytes (9219 bytes)", "found 9119");
    write_cifar(a, 3, 1, 0, 1, 100);
    ck_refused(um_read_cifar(&ds, 1, paths, three, 1, 10, "x"), UM_EFORMAT, a, "found 9119 bytes");   /* gzip trailer: the length */
    write_cifar(a, 3, 1, 0, 1, 0);
    ck_refused(um_read_cifar(&ds, 1, paths, four, 1, 10, "x"), UM_EFORMAT, a, "(12292 bytes), found 9219");
    write_cifar(a, 4, 1, 8, 0, 0);
    ck_refused(um_read_cifar(&ds, 1, paths, NULL, 1, 10, "x"), UM_EFORMAT, "record 3 has label 10", "expected 0..9");
    paths[0] = tmp_path(1, "missing.bin");
    ck_refused(um_read_cifar(&ds, 1, paths, NULL, 1, 10, "x"), UM_EIO, "missing.bin", "cannot open");
    ck_assert_ptr_null(ds);
}
END_TEST

/* An SVHN-like .mat: X 32x32x3xn uint8 with X(r, c, ch, i) = r + 2c + 5ch + 7i, y = i+8 (10 -> 0). */
static void write_svhn(const char *path, int n, int with_y, int xrank) {
    mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    ck_assert_ptr_nonnull(mat);
    size_t dx[4] = {32, 32, 3, (size_t)n}, dy[2] = {(size_t)n, 1};
    uint8_t *x = malloc(3072 * (size_t)n);
    double *y = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        y[i] = 8 + i % 3;
        for (int ch = 0; ch < 3; ch++)
            for (int c = 0; c < 32; c++)
                for (int r = 0; r < 32; r++) x[r + 32 * c + 1024 * ch + 3072 * i] = (uint8_t)(r + 2 * c + 5 * ch + 7 * i);
    }
    matvar_t *vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, xrank, dx, x, 0);
    Mat_VarWrite(mat, vx, MAT_COMPRESSION_NONE);
    Mat_VarFree(vx);
    if (with_y) {
        matvar_t *vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dy, y, 0);
        Mat_VarWrite(mat, vy, MAT_COMPRESSION_NONE);
        Mat_VarFree(vy);
    }
    Mat_Close(mat);
    free(x);
    free(y);
}

START_TEST(svhn_mat) {
    const char *p = tmp_path(0, "train_32x32.mat");
    write_svhn(p, 4, 1, 4);
    um_dataset *ds;
    ck_ok(um_read_svhn(&ds, p, "svhn toy"));
    ck_assert_int_eq(ds->n, 4);
    ck_assert_int_eq(ds->labels[0], 8);
    ck_assert_int_eq(ds->labels[2], 0);   /* 10 means the digit 0 */
    /* NCHW pixel (i=3, ch=2, r=5, c=9) */
    ck_assert_int_eq(ds->pixels[3 * 3072 + 2 * 1024 + 5 * 32 + 9], 5 + 18 + 10 + 21);
    um_dataset_free(ds);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(svhn_refusals) {
    const char *p = tmp_path(0, "t.mat");
    um_dataset *ds = NULL;
    write_svhn(p, 3, 0, 4);
    ck_refused(um_read_svhn(&ds, p, "x"), UM_EFORMAT, "expected variables X and y", "could not read y");
    write_svhn(p, 3, 1, 3);
    ck_refused(um_read_svhn(&ds, p, "x"), UM_EFORMAT, "expected X to be a real 32x32x3xN uint8 array", "found 32x32x3 uint8");
    write_svhn(p, 3, 1, 4);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 2000), 0);
    ck_refused(um_read_svhn(&ds, p, "x"), UM_EFORMAT, p, "truncated or corrupt");
    write_file(p, "not a mat file at all", 21, 0);
    ck_refused(um_read_svhn(&ds, p, "x"), UM_EFORMAT, p, "not a MATLAB .mat file");
    ck_refused(um_read_svhn(&ds, tmp_path(1, "none.mat"), "x"), UM_EIO, "none.mat", "cannot open");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(png_folder) {
    uint8_t gray[6 * 4], rgb[6 * 4 * 3];
    for (int k = 0; k < 24; k++) gray[k] = (uint8_t)(10 * k);
    for (int k = 0; k < 72; k++) rgb[k] = (uint8_t)(3 * k);
    ck_ok(um_write_png(tmp_path(0, "b.png"), gray, 6, 4, 1));
    ck_ok(um_write_png(tmp_path(0, "a.png"), rgb, 6, 4, 3));
    ck_ok(um_write_png(tmp_path(0, "c.PNG"), rgb, 6, 4, 3));
    write_file(tmp_path(0, "notes.txt"), "x", 1, 0);
    um_dataset *ds;
    ck_ok(um_read_png_folder(&ds, dir, 6, 4, 0, "pngs"));
    ck_assert_int_eq(ds->n, 3);
    ck_assert_int_eq(ds->num_classes, 0);
    ck_assert_int_eq(ds->labels[0], -1);
    /* a.png first (sorted); same size: the pixels themselves, HWC -> CHW */
    ck_assert_int_eq(ds->pixels[1 * 24 + 2 * 4 + 3], rgb[(2 * 4 + 3) * 3 + 1]);
    /* b.png is gray: all three channels equal */
    ck_assert_int_eq(ds->pixels[72 + 5], gray[5]);
    ck_assert_int_eq(ds->pixels[72 + 48 + 5], gray[5]);
    um_dataset_free(ds);
    ck_ok(um_read_png_folder(&ds, dir, 3, 2, 2, "pngs"));
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->h * ds->w, 6);
    um_dataset_free(ds);
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(png_refusals) {
    um_dataset *ds = NULL;
    ck_refused(um_read_png_folder(&ds, dir, 8, 8, 0, "x"), UM_EFORMAT, "expected *.png images", "found none");
    ck_refused(um_read_png_folder(&ds, tmp_path(0, "nope"), 8, 8, 0, "x"), UM_EIO, "nope", "cannot open the image folder");
    uint8_t rgb[48] = {0};
    ck_ok(um_write_png(tmp_path(1, "a.png"), rgb, 4, 4, 3));
    write_file(tmp_path(2, "b.png"), "\x89PNG\r\n\x1a\n garbage", 17, 0);
    ck_refused(um_read_png_folder(&ds, dir, 8, 8, 0, "x"), UM_EFORMAT, "b.png", "PNG");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(allocation_failures_leak_nothing) {
    const char *im = tmp_path(0, "i.gz"), *lb = tmp_path(1, "l.gz"), *c = tmp_path(2, "c.bin");
    write_idx(im, lb, 4, 3, 0, 1, 0, 0);
    write_cifar(c, 2, 1, 0, 0, 0);
    const char *paths[1] = {c};
    for (int which = 0; which < 2; which++)
        for (int k = 1; k < 20; k++) {
            um_dataset *ds = NULL;
            um_alloc_fail_after(k);
            int rc = which ? um_read_cifar(&ds, 1, paths, NULL, 1, 10, "x") : um_read_idx(&ds, im, lb, "x", 0, 0, 10);
            um_alloc_fail_after(0);
            ck_assert(rc == UM_OK || rc == UM_ENOMEM);
            um_dataset_free(ds);
            ck_assert_int_eq(um_live_bytes(), 0);
        }
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("readers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, idx_plain_and_gzip);
    tcase_add_test(tc, idx_transposed_letters);
    tcase_add_test(tc, idx_refusals);
    tcase_add_test(tc, cifar_files);
    tcase_add_test(tc, cifar_refusals);
    tcase_add_test(tc, svhn_mat);
    tcase_add_test(tc, svhn_refusals);
    tcase_add_test(tc, png_folder);
    tcase_add_test(tc, png_refusals);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
