/* The CUDA backend's failure paths that a machine without a GPU can show: a device whose
 * read-back fails makes um_sum_all and um_loss_value fail (a stand-in backend, the CPU's
 * kernels with a failing to_host); the device allocator aborts on a pointer it did not
 * hand out instead of passing it to cudaFree (the built libumbra_cuda.so, in a child);
 * cuDNN's algorithm is picked within the workspace that can be had, and geometries whose
 * tensors reach 2^31 elements are refused before cuDNN (core/cuda/cudnn_choice.h). */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check_main.h"
#include "cuda/cudnn_choice.h"
#include "nn/loss.h"

#ifndef UM_CUDA_BUILD_LIB
#define UM_CUDA_BUILD_LIB ""
#endif

/* ---- read-back errors pass up ---------------------------------------------------------- */

static int failing_to_host(void *dst, const void *src, size_t bytes) {
    (void)dst; (void)src; (void)bytes;
    return um_fail(UM_EDEVICE, "faulty: copy to the host failed (an earlier kernel faulted)");
}

static um_backend faulty;

static const um_backend *faulty_backend(void) {
    faulty = *um_cpu_backend();
    faulty.name = "faulty";
    faulty.is_host = 0;   /* the loss takes the device path, through um_sum_all */
    faulty.to_host = failing_to_host;
    return &faulty;
}

START_TEST(read_back_errors_pass_up) {
    const um_backend *be = faulty_backend();
    int64_t s[2] = {4, 3}, n = 4;
    um_tensor *z, *lab;
    ck_ok(um_tensor_zeros(&z, UM_FLOAT32, 2, s, be));
    ck_ok(um_tensor_zeros(&lab, UM_INT64, 1, &n, be));
    double v = 12345.0;
    ck_fails(um_sum_all(z, &v), UM_EDEVICE);
    ck_assert_msg(strstr(um_last_error(), "copy to the host failed") != NULL, "%s", um_last_error());
    ck_assert(v == 12345.0);   /* untouched */
    ck_fails(um_loss_value(UM_LOSS_CROSS_ENTROPY, z, lab, UM_REDUCE_MEAN, &v, NULL), UM_EDEVICE);
    ck_assert_msg(strstr(um_last_error(), "copy to the host failed") != NULL, "%s", um_last_error());
    ck_assert(v == 12345.0);
    um_tensor_release(z);
    um_tensor_release(lab);
}
END_TEST

/* ---- the device allocator ------------------------------------------------------------- */

START_TEST(allocator_aborts_on_unknown_pointer) {
    if (!UM_CUDA_BUILD_LIB[0] || getenv("UMBRA_MEMCHECK")) {
        printf("SKIP device allocator: %s\n", UM_CUDA_BUILD_LIB[0] ? "not under valgrind" : "built without CUDA");
        return;
    }
    void *h = dlopen(UM_CUDA_BUILD_LIB, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "%s", dlerror());
    /* um_cu_free(void *) is C++ (core/cuda/cuda_backend.h): its mangled name */
    void (*cu_free)(void *) = (void (*)(void *))dlsym(h, "_Z10um_cu_freePv");
    ck_assert_msg(cu_free != NULL, "no um_cu_free in %s", UM_CUDA_BUILD_LIB);
    int err[2];
    ck_assert_int_eq(pipe(err), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        cu_free((void *)0x7f0000001000);   /* never handed out */
        _exit(0);                          /* reached only if it returned */
    }
    close(err[1]);
    char msg[512] = "";
    ssize_t got = read(err[0], msg, sizeof msg - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(err[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "the child was not aborted (status %d): %s", st, msg);
    ck_assert_msg(strstr(msg, "not a live block of the device allocator") != NULL, "%s", msg);
    dlclose(h);
}
END_TEST

/* ---- cuDNN's algorithm and sizes -------------------------------------------------------- */

START_TEST(cudnn_algorithm_within_workspace) {
    /* fastest first: tensor math (never), fast with 3 GB, deterministic with 200 MB,
     * non-deterministic with 50 MB, deterministic with none, failed */
    const um_cudnn_algo a[] = {
        {1, 1, 1, 0}, {1, 0, 1, (size_t)3 << 30}, {1, 0, 1, 200u << 20}, {1, 0, 0, 50u << 20}, {1, 0, 1, 0}, {0, 0, 1, 0},
    };
    ck_assert_int_eq(um_cudnn_pick(a, 6, (size_t)4 << 30), 1);
    ck_assert_int_eq(um_cudnn_pick(a, 6, (size_t)1 << 30), 2);    /* the cap skips the 3 GB one */
    ck_assert_int_eq(um_cudnn_pick(a, 4, 100u << 20), 3);         /* only a non-deterministic one fits */
    ck_assert_int_eq(um_cudnn_pick(a, 6, 100u << 20), 4);         /* deterministic preferred */
    ck_assert_int_eq(um_cudnn_pick(a, 6, 0), 4);
    ck_assert_int_eq(um_cudnn_pick(a, 1, (size_t)4 << 30), -1);   /* tensor math only */
    /* the allocation of the chosen workspace failed: the next needs strictly less */
    ck_assert_int_eq(um_cudnn_smaller(a, 6, 1), 2);
    ck_assert_int_eq(um_cudnn_smaller(a, 6, 2), 4);
    ck_assert_int_eq(um_cudnn_smaller(a, 4, 2), 3);
    ck_assert_int_eq(um_cudnn_smaller(a, 6, 4), -1);              /* nothing below no workspace */
}
END_TEST

START_TEST(cudnn_refuses_2_to_the_31_elements) {
    char why[192];
    /* every dimension fits an int, the input does not: 4096 x 64 x 128 x 64 = 2^31 */
    um_window2d g = {.n = 4096, .c = 64, .h = 128, .w = 64, .c_out = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                     .pad_top = 1, .pad_left = 1, .oh = 128, .ow = 64};
    ck_assert_int_eq(um_cudnn_too_big(&g, 128, 64, why, sizeof why), 1);
    ck_assert_msg(strstr(why, "input has 4096 x 64 x 128 x 64 elements") != NULL, "%s", why);
    g.n = 4095;   /* one image less: 2^31 - 2^21 */
    ck_assert_int_eq(um_cudnn_too_big(&g, 128, 64, why, sizeof why), 0);
    g.c_out = 70;   /* now the output: 4095 x 70 x 128 x 64 > 2^31 */
    ck_assert_int_eq(um_cudnn_too_big(&g, 128, 64, why, sizeof why), 1);
    ck_assert_msg(strstr(why, "output") != NULL, "%s", why);
    g.c_out = 8;
    g.n = (int64_t)1 << 31;   /* a dimension itself */
    ck_assert_int_eq(um_cudnn_too_big(&g, 128, 64, why, sizeof why), 1);
    ck_assert_msg(strstr(why, "dimension") != NULL, "%s", why);
    g.n = 2;
    g.c = 1 << 20;
    g.c_out = 1 << 12;   /* the weight: 2^12 x 2^20 x 3 x 3 */
    ck_assert_int_eq(um_cudnn_too_big(&g, 1, 1, why, sizeof why), 1);
    ck_assert_msg(strstr(why, "weight") != NULL, "%s", why);
}
END_TEST

Suite *make_suite(void) {
    Suite *s = suite_create("device_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_test(tc, read_back_errors_pass_up);
    tcase_add_test(tc, allocator_aborts_on_unknown_pointer);
    tcase_add_test(tc, cudnn_algorithm_within_workspace);
    tcase_add_test(tc, cudnn_refuses_2_to_the_31_elements);
    suite_add_tcase(s, tc);
    return s;
}
