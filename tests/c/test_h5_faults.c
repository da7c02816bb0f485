/* Checkpoints under faults: files of version 1 (no digest block) still load and a version 2
 * file without its block is refused; a save that hits the file-size limit (a full disk)
 * fails with the real errno, keeps the old checkpoint and exits cleanly; and byte-level
 * mutations of a checkpoint are all refused or load the same contents (0 crashes, 0 silent
 * wrong loads). UMBRA_MUTATIONS=N and UMBRA_MUTATION_FILE=path scale the last one up
 * (scripts/checkpoint-mutations runs 3,000 cases on a trained model's checkpoint). */
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check_main.h"
#include "io/h5io.h"

static char dir[64], file[128];

static void setup(void) {
    ck_mkdtemp(dir, sizeof dir, "test_h5f");
    snprintf(file, sizeof file, "%s/ck.h5", dir);
}
static void teardown(void) { ck_rmtree(dir); }

static void set_attr_string(hid_t loc, const char *name, const char *value) {
    hid_t st = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(st, H5T_VARIABLE);
    hid_t a = H5Acreate2(loc, name, st, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, st, &value), 0);
    H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
}

static void set_attr_int(hid_t loc, const char *name, int64_t value) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_INT64, &value), 0);
    H5Aclose(a);
    H5Sclose(sp);
}

/* A checkpoint as umbra wrote it before the digest block: HDF5's default (oldest) format,
 * signature at byte 0, version = `version`, one tensor w = {1, 2, 3}. */
static void write_unsealed(const char *path, int64_t version) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    set_attr_string(f, "format", "umbra-checkpoint");
    set_attr_int(f, "version", version);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "w", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const float v[3] = {1, 2, 3};
    ck_assert_int_ge(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

START_TEST(version_1_files_still_load) {
    write_unsealed(file, 1);
    int64_t n = 3;
    um_tensor *w;
    ck_ok(um_tensor_zeros(&w, UM_FLOAT32, 1, &n, NULL));
    um_h5_entry e = {"w", w};
    ck_ok(um_h5_load(file, 1, &e));
    ck_assert(um_f32(w)[0] == 1 && um_f32(w)[2] == 3);
    write_unsealed(file, 2);
    ck_fails(um_h5_load(file, 1, &e), UM_EFORMAT);
    ck_assert_msg(strstr(um_last_error(), "checkpoint version 2 without its digest block"), "%s", um_last_error());
    um_tensor_release(w);
}
END_TEST

static um_tensor *filled(int64_t n, float base) {
    um_tensor *t;
    ck_ok(um_tensor_new(&t, UM_FLOAT32, 1, &n, NULL));
    for (int64_t i = 0; i < n; i++) um_f32(t)[i] = base + (float)i;
    return t;
}

/* A disk that fills up during the save, as the file-size limit (RLIMIT_FSIZE, with SIGXFSZ
 * ignored, writes fail with EFBIG): the child process must report it and exit normally. */
START_TEST(full_disk_save_fails_cleanly) {
    um_tensor *small = filled(16, 1.0f);
    um_h5_entry e = {"model/params/w", small};
    ck_ok(um_h5_save(file, 1, &e, 0, NULL));
    struct stat before;
    ck_assert_int_eq(stat(file, &before), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit lim = {64 * 1024, 64 * 1024};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        um_tensor *big = filled(100000, 2.0f);
        um_h5_entry b = {"model/params/w", big};
        int rc = um_h5_save(file, 1, &b, 0, NULL);
        int named = strstr(um_last_error(), "File too large") != NULL && strstr(um_last_error(), ".tmp.") != NULL;
        if (!named) fprintf(stderr, "message: %s\n", um_last_error());
        um_tensor_release(big);
        exit(rc == UM_EIO && named ? 0 : 3);   /* exit(), not _exit(): HDF5's cleanup runs */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the saving process died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    struct stat after;
    ck_assert_int_eq(stat(file, &after), 0);
    ck_assert_int_eq(after.st_size, before.st_size);
    char tmp[192];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)pid);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    um_tensor *back = filled(16, 0.0f);
    um_h5_entry l = {"model/params/w", back};
    ck_ok(um_h5_load(file, 1, &l));
    ck_assert(um_f32(back)[15] == 16.0f);
    um_tensor_release(back);
    um_tensor_release(small);
}
END_TEST

/* ---- mutations ---- */

static int same_contents(const um_h5_contents *a, const um_h5_contents *b) {
    if (a->n_tensors != b->n_tensors || a->n_attrs != b->n_attrs) return 0;
    for (int i = 0; i < a->n_tensors; i++) {
        const um_tensor *x = a->tensors[i], *y = b->tensors[i];
        if (strcmp(a->names[i], b->names[i]) || a->dtypes[i] != b->dtypes[i] || a->ndims[i] != b->ndims[i]) return 0;
        if (memcmp(a->sizes[i], b->sizes[i], sizeof a->sizes[i])) return 0;
        if (memcmp(x->storage->data, y->storage->data, (size_t)um_numel(x) * um_dtype_size(x->dtype))) return 0;
    }
    for (int i = 0; i < a->n_attrs; i++) {
        const um_h5_attr *x = &a->attrs[i], *y = &b->attrs[i];
        if (strcmp(x->name, y->name) || x->kind != y->kind) return 0;
        if (x->kind == UM_H5_STRING ? strcmp(x->s, y->s) : x->kind == UM_H5_INT ? x->i != y->i : memcmp(&x->d, &y->d, sizeof x->d)) return 0;
    }
    return 1;
}

static uint64_t rng_state;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Mutate buf (n bytes, room for n + 16) in place; returns the new length. */
static size_t mutate(uint8_t *buf, size_t n) {
    uint64_t kind = next_random() % 10;
    if (kind < 6) {                       /* 1-4 random bytes replaced */
        int k = 1 + (int)(next_random() % 4);
        for (int i = 0; i < k; i++) buf[next_random() % n] = (uint8_t)next_random();
    } else if (kind < 7) {                /* one bit flipped */
        buf[next_random() % n] ^= (uint8_t)(1u << (next_random() % 8));
    } else if (kind < 8) {                /* truncated */
        return next_random() % n;
    } else if (kind < 9) {                /* a run of 16 bytes zeroed */
        size_t at = next_random() % (n - 16);
        memset(buf + at, 0, 16);
    } else {                              /* bytes appended */
        for (int i = 0; i < 16; i++) buf[n + i] = (uint8_t)next_random();
        return n + 16;
    }
    return n;
}

enum { REFUSED = 10, SAME = 11, DIFFERENT = 12 };

/* One mutated file read in a child process: its exit code, or 128 + signal. */
static int try_one(const char *path, const um_h5_contents *ref, const char *errlog) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { dup2(fd, 2); close(fd); }
        um_h5_contents *c = NULL;
        int rc = um_h5_read(&c, path, NULL, 1, 1);
        int code = rc != UM_OK ? REFUSED : same_contents(c, ref) ? SAME : DIFFERENT;
        um_h5_contents_free(c);
        exit(code);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int sanitizer_report(const char *errlog) {
    FILE *f = fopen(errlog, "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, "runtime error") || strstr(line, "Sanitizer") || strstr(line, "HDF5-DIAG");
    if (f) fclose(f);
    return found;
}

START_TEST(mutated_checkpoints_refused_or_same) {
    const char *src = getenv("UMBRA_MUTATION_FILE");
    const char *count = getenv("UMBRA_MUTATIONS");
    int cases = count ? atoi(count) : getenv("UMBRA_MEMCHECK") ? 12 : 50;
    if (!src) {
        um_tensor *w = filled(300, 0.5f), *m = filled(300, -4.0f);
        um_h5_entry e[2] = {{"model/params/w", w}, {"optim/m/1", m}};
        const um_h5_attr a[3] = {{"epoch", UM_H5_INT, NULL, 12, 0}, {"optim/lr", UM_H5_DOUBLE, NULL, 0, 0.1},
                                 {"config/architecture", UM_H5_STRING, "lenet", 0, 0}};
        ck_ok(um_h5_save(file, 2, e, 3, a));
        um_tensor_release(w);
        um_tensor_release(m);
        src = file;
    }
    um_h5_contents *ref;
    ck_ok(um_h5_read(&ref, src, NULL, 1, 1));
    FILE *f = fopen(src, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    uint8_t *orig = malloc(n), *buf = malloc(n + 16);
    ck_assert_uint_eq(fread(orig, 1, n, f), n);
    fclose(f);
    char mutant[160], errlog[160];
    snprintf(mutant, sizeof mutant, "%s/mutant.h5", dir);
    snprintf(errlog, sizeof errlog, "%s/stderr.txt", dir);
    const char *seed = getenv("UMBRA_MUTATION_SEED");
    rng_state = strtoull(seed ? seed : "1", NULL, 10) | 1;   /* seed 1 found silent wrong loads before the digest */
    int tally[4] = {0}, bad = 0, unchanged = 0;   /* refused, same, different, crashed or reported */
    for (int k = 0; k < cases; k++) {
        memcpy(buf, orig, n);
        size_t len = mutate(buf, n);
        if (len == n && memcmp(buf, orig, n) == 0) { unchanged++; continue; }   /* zeros over zeros */
        f = fopen(mutant, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        int r = try_one(mutant, ref, errlog);
        int slot = r == REFUSED ? 0 : r == SAME ? 1 : r == DIFFERENT ? 2 : 3;
        if (slot < 2 && sanitizer_report(errlog)) slot = 3;
        tally[slot]++;
        if (slot >= 2 && bad++ < 5) {
            char keep[200];
            snprintf(keep, sizeof keep, "/tmp/umbra-mutant-%d.h5", k);
            rename(mutant, keep);
            fprintf(stderr, "case %d: %s (exit %d), kept as %s\n", k, slot == 2 ? "silent wrong load" : "crash or sanitizer report", r, keep);
        }
    }
    printf("mutations: %d cases of %zu bytes (%d left the file unchanged): %d refused, %d loaded the same, %d silent wrong loads, "
           "%d crashes or sanitizer reports\n", cases, n, unchanged, tally[0], tally[1], tally[2], tally[3]);
    fflush(stdout);
    free(orig);
    free(buf);
    um_h5_contents_free(ref);
    ck_assert_int_eq(tally[2], 0);
    ck_assert_int_eq(tally[3], 0);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("h5_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 3600);
    tcase_add_test(tc, version_1_files_still_load);
    tcase_add_test(tc, full_disk_save_fails_cleanly);
    tcase_add_test(tc, mutated_checkpoints_refused_or_same);
    suite_add_tcase(s, tc);
    return s;
}

#include "check_main.h"
