/* An application that embeds only the engine (base + nn + cpu: build/libumbra_engine.a):
 * a small conv net, one forward, backward and SGD step. It is linked without HDF5, matio,
 * libpng or Lua, which shows that the engine needs none of them; run by `make test`. */
#include <math.h>
#include <stdio.h>
#include "umbra.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"

#define CHECK(call)                                                          \
    do {                                                                     \
        if ((call) != UM_OK) {                                               \
            fprintf(stderr, "engine_only: %s: %s\n", #call, um_last_error()); \
            return 1;                                                        \
        }                                                                    \
    } while (0)

int main(void) {
    um_generator g;
    um_generator_init(&g, 1);
    um_module *net, *conv, *relu, *pool, *flat, *fc;
    um_conv2d_config cc = {.c_in = 1, .c_out = 4, .kh = 3, .kw = 3, .padding = UM_PAD_SAME, .bias = 1};
    CHECK(um_sequential_new(&net));
    CHECK(um_conv2d_new(&conv, &cc, &g));
    CHECK(um_relu_new(&relu));
    CHECK(um_maxpool2d_new(&pool, 2, 2, 2, 2, UM_PAD_VALID));
    CHECK(um_flatten_new(&flat));
    CHECK(um_linear_new(&fc, 4 * 4 * 4, 3, 1, &g));
    CHECK(um_sequential_add(net, "conv", conv));
    CHECK(um_sequential_add(net, "relu", relu));
    CHECK(um_sequential_add(net, "pool", pool));
    CHECK(um_sequential_add(net, "flat", flat));
    CHECK(um_sequential_add(net, "fc", fc));
    um_module *own[5] = {conv, relu, pool, flat, fc};
    for (int i = 0; i < 5; i++) um_module_release(own[i]);   /* the net holds them now */
    int64_t xs[4] = {2, 1, 8, 8}, ys[1] = {2};
    um_tensor *x, *y, *logits, *glog = NULL, *gx;
    CHECK(um_tensor_new(&x, UM_FLOAT32, 4, xs, NULL));
    CHECK(um_tensor_new(&y, UM_INT64, 1, ys, NULL));
    for (int64_t i = 0; i < um_numel(x); i++) um_f32(x)[i] = (float)((i * 37) % 11) / 10.0f;
    um_i64(y)[0] = 0;
    um_i64(y)[1] = 2;
    um_tensor *params[8], *grads[8];
    int n = um_module_tensors(net, UM_PARAMS, params, 8);
    um_module_tensors(net, UM_GRADS, grads, 8);
    um_optimizer *opt;
    CHECK(um_sgd_new(&opt, n, params, grads, 0.1, 0.0, 0));
    double before = 0, after = 0;
    for (int step = 0; step < 2; step++) {
        CHECK(um_module_forward(net, x, &logits));
        double loss;
        um_tensor *work = NULL;
        CHECK(um_loss_value(UM_LOSS_CROSS_ENTROPY, logits, y, UM_REDUCE_MEAN, &loss, &work));
        um_tensor_release(work);
        if (step == 0) before = loss;
        after = loss;
        CHECK(um_loss_backward(UM_LOSS_CROSS_ENTROPY, logits, y, UM_REDUCE_MEAN, 1.0, NULL, &glog));
        CHECK(um_module_zero_grad(net));
        CHECK(um_module_backward(net, x, glog, &gx));
        CHECK(um_optim_step(opt));
    }
    printf("engine_only: cross-entropy %.4f -> %.4f after one SGD step\n", before, after);
    um_optim_free(opt);
    um_tensor_release(glog);
    um_tensor_release(x);
    um_tensor_release(y);
    um_module_release(net);
    return isfinite(after) && after < before ? 0 : 1;
}
