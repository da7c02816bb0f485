/* HDF5 checkpoints: a bit-exact round trip of float32/int64 tensors of every rank with
 * typed root and group attributes; refusals, each naming the file and the first offending
 * tensor (missing, wrong shape, wrong dtype, wrong format or version, truncated, damaged
 * bytes caught by the digest block) with the destination tensors untouched and nothing
 * leaked. More fault cases (version 1 files, a full disk, mutations) in test_h5_faults.c. */
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check_main.h"
#include "io/h5io.h"

static char dir[64], file[128];

static void setup(void) {
    ck_mkdtemp(dir, sizeof dir, "test_h5");
    snprintf(file, sizeof file, "%s/ck.h5", dir);
}
static void teardown(void) { ck_rmtree(dir); }

static um_tensor *tensor(um_dtype dt, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int seed) {
    int64_t size[4] = {a, b, c, d};
    um_tensor *t;
    ck_ok(um_tensor_new(&t, dt, ndim, size, NULL));
    for (int64_t i = 0; i < um_numel(t); i++) {
        if (dt == UM_FLOAT32) um_f32(t)[i] = (float)(seed + i) * 0.37f - 1.0f;
        else um_i64(t)[i] = (int64_t)seed * 1000000007LL - i;
    }
    return t;
}

static int same_bytes(const um_tensor *a, const um_tensor *b) {
    return a->dtype == b->dtype && um_numel(a) == um_numel(b) &&
           memcmp(a->storage->data, b->storage->data, (size_t)um_numel(a) * um_dtype_size(a->dtype)) == 0;
}

#define N_ENTRIES 6
static um_tensor *saved[N_ENTRIES];
static um_h5_entry entries[N_ENTRIES];
static const um_h5_attr attrs[] = {
    {"architecture", UM_H5_STRING, "lenet", 0, 0},
    {"epoch", UM_H5_INT, NULL, 12, 0},
    {"generator_counter", UM_H5_INT, NULL, -5, 0},
    {"config/lr", UM_H5_DOUBLE, NULL, 0, 0.1},
    {"optim/beta1", UM_H5_DOUBLE, NULL, 0, 0.9},
};

/* A checkpoint with the awkward cases: a scalar, an empty tensor, special floats. */
static void save_fixture(void) {
    saved[0] = tensor(UM_FLOAT32, 4, 2, 3, 4, 5, 1);
    saved[1] = tensor(UM_FLOAT32, 1, 7, 0, 0, 0, 2);
    saved[2] = tensor(UM_INT64, 1, 9, 0, 0, 0, 3);
    saved[3] = tensor(UM_FLOAT32, 0, 0, 0, 0, 0, 4);
    saved[4] = tensor(UM_FLOAT32, 2, 0, 3, 0, 0, 5);
    saved[5] = tensor(UM_FLOAT32, 2, 2, 2, 0, 0, 6);
    float *s = um_f32(saved[1]);
    s[0] = -0.0f; s[1] = NAN; s[2] = INFINITY; s[3] = 1e-42f; /* a denormal */
    const char *paths[N_ENTRIES] = {"model/params/block_2_0.main.conv1.weight", "model/params/fc.bias",
                                    "model/buffers/steps", "/optim/t", "extra/empty", "optim/m/1"};
    for (int i = 0; i < N_ENTRIES; i++) entries[i] = (um_h5_entry){paths[i], saved[i]};
    ck_ok(um_h5_save(file, N_ENTRIES, entries, 5, attrs));
}

static void release_fixture(void) {
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(saved[i]);
}

/* Fresh zero tensors shaped like the fixture's, as load destinations. */
static void blanks(um_tensor **t, um_h5_entry *e) {
    for (int i = 0; i < N_ENTRIES; i++) {
        ck_ok(um_tensor_zeros(&t[i], saved[i]->dtype, saved[i]->ndim, saved[i]->size, NULL));
        e[i] = (um_h5_entry){entries[i].path, t[i]};
    }
}

START_TEST(round_trip_bit_exact) {
    save_fixture();
    um_tensor *t[N_ENTRIES];
    um_h5_entry e[N_ENTRIES];
    blanks(t, e);
    ck_ok(um_h5_load(file, N_ENTRIES, e));
    for (int i = 0; i < N_ENTRIES; i++) ck_assert_msg(same_bytes(t[i], saved[i]), "%s differs", e[i].path);
    /* no temporary file left beside it */
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));) files += de->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 1);
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(t[i]);
    release_fixture();
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(read_everything) {
    save_fixture();
    um_h5_contents *c;
    ck_ok(um_h5_read(&c, file, NULL, 1, 1));
    ck_assert_int_eq(c->n_tensors, N_ENTRIES);
    ck_assert_str_eq(c->names[0], "extra/empty");   /* sorted by path */
    ck_assert_str_eq(c->names[1], "model/buffers/steps");
    ck_assert_int_eq(c->dtypes[1], UM_INT64);
    ck_assert_int_eq(c->ndims[5], 0);
    ck_assert_str_eq(c->names[5], "optim/t");
    ck_assert(same_bytes(c->tensors[3], saved[1]));
    ck_assert_str_eq(um_h5_find_attr(c, "format")->s, "umbra-checkpoint");
    ck_assert_int_eq(um_h5_find_attr(c, "version")->i, 2);
    ck_assert_str_eq(um_h5_find_attr(c, "layout")->s, "NCHW");
    ck_assert_str_eq(um_h5_find_attr(c, "architecture")->s, "lenet");
    ck_assert_int_eq(um_h5_find_attr(c, "generator_counter")->i, -5);
    ck_close(um_h5_find_attr(c, "config/lr")->d, 0.1, 0);
    ck_close(um_h5_find_attr(c, "optim/beta1")->d, 0.9, 0);
    ck_assert_ptr_null(um_h5_find_attr(c, "nothing"));
    um_h5_contents_free(c);
    ck_ok(um_h5_read(&c, file, "optim", 0, 1));
    ck_assert_int_eq(c->n_tensors, 2);
    ck_assert_str_eq(c->names[0], "optim/m/1");
    ck_assert_ptr_null(c->tensors[0]);
    ck_assert_int_eq(c->sizes[0][1], 2);
    um_h5_contents_free(c);
    release_fixture();
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(h5dump_reads_it) {
    save_fixture();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "h5dump -A '%s' 2>&1 | grep -q 'umbra-checkpoint'", file);
    if (access("/usr/bin/h5dump", X_OK) == 0) ck_assert_int_eq(system(cmd), 0);
    else printf("SKIP h5io: h5dump not installed\n");
    release_fixture();
}
END_TEST

/* load fails with code naming frag, leaves the destinations zero and leaks nothing. */
static void expect_refusal(const char *path, um_h5_entry *e, int n, int code, const char *frag) {
    int64_t live = um_live_bytes();
    ck_fails(um_h5_load(path, n, e), code);
    ck_assert_msg(strstr(um_last_error(), frag), "'%s' lacks '%s'", um_last_error(), frag);
    ck_assert_msg(strstr(um_last_error(), path), "'%s' does not name the file", um_last_error());
    ck_assert_int_eq(um_live_bytes(), live);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < um_numel(e[i].tensor); k++)
            ck_assert(e[i].tensor->dtype == UM_FLOAT32 ? um_f32(e[i].tensor)[k] == 0.0f : um_i64(e[i].tensor)[k] == 0);
}

START_TEST(load_refusals) {
    save_fixture();
    um_tensor *t[N_ENTRIES], *wrong;
    um_h5_entry e[N_ENTRIES];
    blanks(t, e);
    e[3].path = "model/params/fc.weight";
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "no tensor model/params/fc.weight in the checkpoint");
    e[3].path = "model/nothing/x";
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "no tensor model/nothing/x");
    e[3].path = "model/params";
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "model/params is not a tensor");
    e[3].path = entries[3].path;
    int64_t size[2] = {7, 1};
    ck_ok(um_tensor_zeros(&wrong, UM_FLOAT32, 2, size, NULL));
    e[1].tensor = wrong;
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "model/params/fc.bias has shape 7 in the checkpoint, expected 7x1");
    um_tensor_release(wrong);
    ck_ok(um_tensor_zeros(&wrong, UM_INT64, 1, size, NULL));
    e[1].tensor = wrong;
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "fc.bias has dtype float32 in the checkpoint, expected int64");
    um_tensor_release(wrong);
    e[1].tensor = t[1];
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.h5", dir);
    expect_refusal(missing, e, N_ENTRIES, UM_EIO, "cannot open");
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(t[i]);
    release_fixture();
}
END_TEST

static void copy_truncated(const char *from, const char *to, long keep, long flip_at) {
    FILE *f = fopen(from, "rb");
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (keep >= 0 && (size_t)keep < n) n = (size_t)keep;
    if (flip_at >= 0) buf[flip_at] ^= 0x10;
    f = fopen(to, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

/* Offset of the first float of saved[0] (a distinctive run) in the file. */
static long data_offset(const char *path) {
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + 16 <= n; i++)
        if (memcmp(buf + i, um_f32(saved[0]), 16) == 0) return (long)i;
    return -1;
}

START_TEST(damaged_files_refused) {
    save_fixture();
    um_tensor *t[N_ENTRIES];
    um_h5_entry e[N_ENTRIES];
    blanks(t, e);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.h5", dir);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    copy_truncated(file, bad, st.st_size / 2, -1);
    expect_refusal(bad, e, N_ENTRIES, UM_EFORMAT, "bytes, its header says");
    copy_truncated(file, bad, 100, -1);
    expect_refusal(bad, e, N_ENTRIES, UM_EFORMAT, "not an umbra checkpoint (no \"UMBRA-CHECKPOINT\" header");
    long off = data_offset(file);
    ck_assert(off > 0);
    copy_truncated(file, bad, -1, off + 5);
    expect_refusal(bad, e, N_ENTRIES, UM_EFORMAT, "checkpoint digest mismatch");
    copy_truncated(file, bad, -1, 600);   /* HDF5 metadata */
    expect_refusal(bad, e, N_ENTRIES, UM_EFORMAT, "checkpoint digest mismatch");
    copy_truncated(file, bad, -1, 300);   /* the zero padding of the digest block */
    expect_refusal(bad, e, N_ENTRIES, UM_EFORMAT, "digest header (first 512 bytes) is damaged");
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(t[i]);
    release_fixture();
}
END_TEST

START_TEST(format_and_version_checked) {
    save_fixture();
    um_tensor *t[N_ENTRIES];
    um_h5_entry e[N_ENTRIES];
    blanks(t, e);
    char other[160];
    snprintf(other, sizeof other, "%s/other.h5", dir);
    hid_t f = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_refusal(other, e, N_ENTRIES, UM_EFORMAT, "not an umbra checkpoint (expected attribute format = \"umbra-checkpoint\", found none)");
    /* an edit through HDF5 itself, which keeps the file valid HDF5, breaks the digest */
    f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
    int64_t three = 3;
    H5Awrite(a, H5T_NATIVE_INT64, &three);
    H5Aclose(a);
    H5Fclose(f);
    expect_refusal(file, e, N_ENTRIES, UM_EFORMAT, "checkpoint digest mismatch");
    um_h5_contents *c;
    ck_fails(um_h5_read(&c, file, NULL, 1, 1), UM_EFORMAT);
    ck_fails(um_h5_read(&c, file, NULL, 1, 0), UM_EFORMAT);   /* unchecked reading checks the digest too */
    /* a file without the digest block (version 1 layout) of an unknown version */
    f = H5Fopen(other, H5F_ACC_RDWR, H5P_DEFAULT);
    const char *fmt = "umbra-checkpoint";
    hid_t st = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(st, H5T_VARIABLE);
    a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, &fmt);
    H5Aclose(a);
    a = H5Acreate2(f, "version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &three);
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
    H5Fclose(f);
    expect_refusal(other, e, 0, UM_EFORMAT, "checkpoint version 3, this umbra reads versions 1 and 2");
    ck_ok(um_h5_read(&c, other, NULL, 1, 0));   /* unchecked reading of a file without the block works */
    um_h5_contents_free(c);
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(t[i]);
    release_fixture();
}
END_TEST

START_TEST(save_refusals_leave_the_old_file) {
    save_fixture();
    struct stat before, after;
    ck_assert_int_eq(stat(file, &before), 0);
    um_h5_entry twice[2] = {{"a/b", saved[0]}, {"/a/b", saved[1]}};
    ck_fails(um_h5_save(file, 2, twice, 0, NULL), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "tensor path /a/b given twice"));
    um_h5_entry empty[1] = {{"a//b", saved[0]}};
    ck_fails(um_h5_save(file, 1, empty, 0, NULL), UM_EINVAL);
    const um_h5_attr reserved[1] = {{"version", UM_H5_INT, NULL, 3, 0}};
    ck_fails(um_h5_save(file, 1, entries, 1, reserved), UM_EINVAL);
    ck_assert(strstr(um_last_error(), "'version' is reserved"));
    /* an attribute on a group path that is a dataset: fails while writing */
    const um_h5_attr clash[1] = {{"extra/empty/x", UM_H5_INT, NULL, 3, 0}};
    ck_fails(um_h5_save(file, N_ENTRIES, entries, 1, clash), UM_EIO);
    ck_assert_int_eq(stat(file, &after), 0);
    ck_assert_int_eq(after.st_mtime, before.st_mtime);
    ck_assert_int_eq(after.st_size, before.st_size);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.h5", dir);
    ck_fails(um_h5_save(nodir, N_ENTRIES, entries, 0, NULL), UM_EIO);
    ck_assert(strstr(um_last_error(), "no/such/dir.h5.tmp."));
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));) files += de->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 1);
    release_fixture();
    ck_assert_int_eq(um_live_bytes(), 0);
}
END_TEST

START_TEST(allocation_failures_leak_nothing) {
    save_fixture();
    um_tensor *t[N_ENTRIES];
    um_h5_entry e[N_ENTRIES];
    blanks(t, e);
    int64_t live = um_live_bytes();
    for (int k = 1; k < 60; k++) {
        um_h5_contents *c = NULL;
        um_alloc_fail_after(k);
        int r1 = um_h5_load(file, N_ENTRIES, e);
        um_alloc_fail_after(k);
        int r2 = um_h5_read(&c, file, NULL, 1, 1);
        um_alloc_fail_after(k);
        int r3 = um_h5_save(file, N_ENTRIES, entries, 5, attrs);
        um_alloc_fail_after(0);
        ck_assert(r1 == UM_OK || r1 == UM_ENOMEM);
        ck_assert(r2 == UM_OK || r2 == UM_ENOMEM);
        ck_assert(r3 == UM_OK || r3 == UM_ENOMEM);
        if (r2 == UM_OK) um_h5_contents_free(c);
        ck_assert_int_eq(um_live_bytes(), live);
    }
    for (int i = 0; i < N_ENTRIES; i++) um_tensor_release(t[i]);
    release_fixture();
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("h5io");
    TCase *tc = tcase_create("checkpoints");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_bit_exact);
    tcase_add_test(tc, read_everything);
    tcase_add_test(tc, h5dump_reads_it);
    tcase_add_test(tc, load_refusals);
    tcase_add_test(tc, damaged_files_refused);
    tcase_add_test(tc, format_and_version_checked);
    tcase_add_test(tc, save_refusals_leave_the_old_file);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
