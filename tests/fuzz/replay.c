/* Replays every committed fuzz input (tests/fuzz/corpus/<target>/ and
 * tests/fuzz/regressions/<target>/) through its entry point with plain gcc, no libFuzzer:
 * a crash fails the suite, and so does memory left counted by umbra's allocator after an
 * input (ASan's and valgrind's leak checks cover malloc under `make asan` and
 * `make memcheck`). Run from the repository root (UMBRA_FUZZ_DIR names another tests/fuzz). */
#include <dirent.h>
#include <stdio.h>
#include "alloc.h"
#include "check_main.h"
#include "fuzz.h"

static const char *fuzz_root(void) {
    const char *d = getenv("UMBRA_FUZZ_DIR");
    return d && *d ? d : "tests/fuzz";
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    ck_assert(buf != NULL);
    ck_assert(len >= 0 && fread(buf, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* Every file of folder through run; the number of files. A missing folder has none. */
static int replay_folder(const um_fuzz_target *t, const char *kind, const char *name) {
    char folder[512];
    snprintf(folder, sizeof folder, "%s/%s/%s", fuzz_root(), kind, name);
    DIR *d = opendir(folder);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md")) continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        size_t n;
        uint8_t *buf = slurp(path, &n);
        int64_t before = um_live_bytes();
        ck_assert_msg(t->run(buf, n) == 0, "%s: entry point failed", path);
        ck_assert_msg(um_live_bytes() == before, "%s: %lld bytes of umbra memory left after reading",
                      path, (long long)(um_live_bytes() - before));
        free(buf);
        count++;
    }
    closedir(d);
    return count;
}

START_TEST(replay_target) {
    const um_fuzz_target *t = &um_fuzz_targets[_i];
    int seeds = replay_folder(t, "corpus", t->seeds);
    replay_folder(t, "regressions", t->name);
    ck_assert_msg(seeds > 0, "no seed corpus for %s under %s/corpus/%s", t->name, fuzz_root(), t->seeds);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("fuzz_replay");
    TCase *tc = tcase_create("corpora");
    int n = 0;
    while (um_fuzz_targets[n].name) n++;
    tcase_add_loop_test(tc, replay_target, 0, n);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
