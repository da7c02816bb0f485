/* CUDA against CPU for training through interval bounds (GOOD, core/ood/ibp_train.c): the
 * tape's logit-difference bounds and every parameter gradient of its backward, on a net of
 * each trainable kind (Conv2d same/stride 2, ReLU, max-pool, Flatten, Linear), with the
 * box clipped and unclipped, and the elision's backward kernel on its own with a dense
 * gradient (GOOD's sparse one is a special case). Without a device: one SKIP line. */
#include "parity.h"
#include "nn/layers.h"
#include "ood/ibp_train.h"
#include "ood/ood_ops.h"

static um_module *bound_net(uint64_t seed) {
    um_generator g;
    um_generator_init(&g, seed);
    um_conv2d_config c1 = {.c_in = 1, .c_out = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .padding = UM_PAD_SAME, .bias = 1};
    um_conv2d_config c2 = {.c_in = 4, .c_out = 6, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .padding = UM_PAD_SAME, .bias = 1};
    um_module *parts[9];
    ck_ok(um_conv2d_new(&parts[0], &c1, &g));
    ck_ok(um_relu_new(&parts[1]));
    ck_ok(um_maxpool2d_new(&parts[2], 2, 2, 2, 2, UM_PAD_SAME));
    ck_ok(um_conv2d_new(&parts[3], &c2, &g));
    ck_ok(um_relu_new(&parts[4]));
    ck_ok(um_flatten_new(&parts[5]));
    ck_ok(um_linear_new(&parts[6], 6 * 3 * 3, 16, 1, &g));
    ck_ok(um_relu_new(&parts[7]));
    ck_ok(um_linear_new(&parts[8], 16, 5, 1, &g));
    return ck_seq(9, parts);
}

START_TEST(tape_forward_and_backward) {
    const um_backend *be = dev();
    um_module *a = bound_net(31), *b = bound_net(31);
    ck_ok(um_module_to(b, be));
    um_generator g;
    um_generator_init(&g, 32);
    int64_t zs[4] = {6, 1, 11, 11}, us[3] = {6, 5, 5};
    um_tensor *z = rnd(4, zs, &g, 0, 1), *dz = on(z, be), *gud = rnd(3, us, &g, -1, 1), *dgud = on(gud, be);
    for (int clip = 0; clip < 2; clip++) {
        um_ibp_tape *t1, *t2;
        um_tensor *u1, *u2;
        ck_ok(um_module_zero_grad(a));
        ck_ok(um_module_zero_grad(b));
        ck_ok(um_ibp_tape_forward(a, z, 0.05, clip, &t1, &u1));
        ck_ok(um_ibp_tape_forward(b, dz, 0.05, clip, &t2, &u2));
        close_rel("tape bounds", u1, u2, RTOL);
        ck_ok(um_ibp_tape_backward(t1, gud));
        ck_ok(um_ibp_tape_backward(t2, dgud));
        close_trees("tape parameter gradient", a, b, UM_GRADS, 1e-3);   /* sums over the batch and boxes */
        um_ibp_tape_free(t1); um_ibp_tape_free(t2);
        um_tensor_release(u1); um_tensor_release(u2);
    }
    um_tensor_release(z); um_tensor_release(dz); um_tensor_release(gud); um_tensor_release(dgud);
    um_module_release(a); um_module_release(b);
}
END_TEST

START_TEST(elision_backward_kernel) {
    const um_backend *be = dev(), *cpu = um_cpu_backend();
    um_generator g;
    um_generator_init(&g, 33);
    int64_t bs[2] = {7, 40}, ws[2] = {10, 40}, us[3] = {7, 10, 10}, kb = 10;
    um_tensor *lo = rnd(2, bs, &g, -1, 0), *hi = rnd(2, bs, &g, 0, 1), *w = rnd(2, ws, &g, -1, 1);
    um_tensor *gud = rnd(3, us, &g, -1, 1), *gw = rnd(2, ws, &g, -1, 1), *gb = rnd(1, &kb, &g, -1, 1);
    um_tensor *dlo = on(lo, be), *dhi = on(hi, be), *dw = on(w, be), *dgud = on(gud, be), *dgw = on(gw, be),
              *dgb = on(gb, be), *gl, *gh, *dgl, *dgh;
    ck_ok(um_tensor_new(&gl, UM_FLOAT32, 2, bs, NULL));
    ck_ok(um_tensor_new(&gh, UM_FLOAT32, 2, bs, NULL));
    ck_ok(um_tensor_new(&dgl, UM_FLOAT32, 2, bs, be));
    ck_ok(um_tensor_new(&dgh, UM_FLOAT32, 2, bs, be));
    ck_ok(UM_OOD_CALL(cpu, ibp_elision_backward, gud, lo, hi, w, gl, gh, gw, gb));
    ck_ok(UM_OOD_CALL(be, ibp_elision_backward, dgud, dlo, dhi, dw, dgl, dgh, dgw, dgb));
    close_rel("elision backward g_lo", gl, dgl, RTOL);
    close_rel("elision backward g_hi", gh, dgh, RTOL);
    close_rel("elision backward gw (+=)", gw, dgw, RTOL);
    close_rel("elision backward gb (+=)", gb, dgb, RTOL);
    um_tensor *all[] = {lo, hi, w, gud, gw, gb, dlo, dhi, dw, dgud, dgw, dgb, gl, gh, dgl, dgh};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) um_tensor_release(all[i]);
}
END_TEST

static void add_tests(TCase *tc) {
    tcase_add_test(tc, tape_forward_and_backward);
    tcase_add_test(tc, elision_backward_kernel);
}

Suite *make_suite(void) { return parity_suite("cuda_parity_bounds", add_tests); }
