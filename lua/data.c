/* umbra.core data set functions: readers returning a Dataset userdata (or nil, message
 * for a missing or bad file), the Dataset's methods (size, shape, get, class counts,
 * batches into caller buffers, grayscale resize) and a PNG writer. Labels cross into Lua
 * 1-based, as every class label in umbra's Lua API; unlabelled images have none. */
#include <string.h>
#include "binding.h"
#include "data/data.h"

#define UM_DATASET_MT "umbra.Dataset"

typedef struct { um_dataset *ds; } dataset_box;

static dataset_box *push_box(lua_State *L) {
    dataset_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->ds = NULL;
    luaL_setmetatable(L, UM_DATASET_MT);
    return box;
}

static um_dataset *check_ds(lua_State *L, int i) {
    dataset_box *box = luaL_checkudata(L, i, UM_DATASET_MT);
    if (!box->ds) luaL_argerror(L, i, "data set was freed");
    return box->ds;
}

/* After a reader: the box on top, or nil, message for a file problem (raise otherwise). */
static int reader_result(lua_State *L, int rc, const char *fname) {
    if (rc == UM_OK) return 1;
    if (rc != UM_EIO && rc != UM_EFORMAT) return um_lua_raise(L, fname);
    lua_pushnil(L);
    lua_pushstring(L, um_last_error());
    return 2;
}

/* data_read_idx(images, labels, name [, transpose, label_min, num_classes]) */
static int read_idx(lua_State *L) {
    const char *im = luaL_checkstring(L, 1), *lb = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
    int transpose = lua_toboolean(L, 4);
    lua_Integer lmin = luaL_optinteger(L, 5, 0), k = luaL_optinteger(L, 6, 10);
    luaL_argcheck(L, lmin >= 0 && k >= 1 && lmin + k <= 256, 6, "labels must fit in a byte");
    dataset_box *box = push_box(L);
    return reader_result(L, um_read_idx(&box->ds, im, lb, name, transpose, (int)lmin, (int)k), "read_idx");
}

/* data_read_cifar({paths}, {records} | nil, label_bytes, num_classes, name) */
static int read_cifar(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 64, 1, "1..64 file names expected");
    const char *paths[64];
    int64_t records[64] = {0};
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        paths[i] = luaL_checkstring(L, -1);  /* stays referenced by the table */
        lua_pop(L, 1);
        if (lua_istable(L, 2)) {
            lua_geti(L, 2, i + 1);
            records[i] = (int64_t)luaL_optinteger(L, -1, 0);
            lua_pop(L, 1);
        }
    }
    lua_Integer lb = luaL_checkinteger(L, 3), k = luaL_checkinteger(L, 4);
    const char *name = luaL_checkstring(L, 5);
    luaL_argcheck(L, lb == 1 || lb == 2, 3, "1 or 2 label bytes");
    luaL_argcheck(L, k >= 1 && k <= 256, 4, "1..256 classes");
    dataset_box *box = push_box(L);
    return reader_result(L, um_read_cifar(&box->ds, n, paths, records, (int)lb, (int)k, name), "read_cifar");
}

static int read_svhn(lua_State *L) {
    const char *path = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2);
    dataset_box *box = push_box(L);
    return reader_result(L, um_read_svhn(&box->ds, path, name), "read_svhn");
}

/* data_read_png_folder(dir, height, width, limit, name) */
static int read_png_folder(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3), limit = luaL_optinteger(L, 4, 0);
    const char *name = luaL_checkstring(L, 5);
    luaL_argcheck(L, h >= 1 && h <= 4096, 2, "height must be in 1..4096");
    luaL_argcheck(L, w >= 1 && w <= 4096, 3, "width must be in 1..4096");
    dataset_box *box = push_box(L);
    return reader_result(L, um_read_png_folder(&box->ds, dir, (int)h, (int)w, limit, name), "read_png_folder");
}

/* data_write_png(path, image): image is a float CPU tensor HxW or CxHxW (C = 1 or 3) in
 * [0,1] (clamped), written as 8-bit gray or RGB. Returns true or nil, message. */
static int write_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    um_tensor *t = um_lua_check_tensor(L, 2);
    int c = t->ndim == 3 ? (int)t->size[0] : 1;
    if (!((t->ndim == 2) || (t->ndim == 3 && (c == 1 || c == 3))) || t->dtype != UM_FLOAT32)
        return luaL_error(L, "write_png: expected a float32 HxW or CxHxW image with 1 or 3 channels");
    if (!um_backend_of(t)->is_host || !um_is_contiguous(t))
        return luaL_error(L, "write_png: the image must be a contiguous CPU tensor (use :contiguous() / :to('cpu'))");
    int h = (int)t->size[t->ndim - 2], w = (int)t->size[t->ndim - 1];
    size_t plane = (size_t)h * w;
    uint8_t *buf = lua_newuserdatauv(L, plane * (size_t)c, 0);
    const float *src = um_f32(t);
    for (size_t k = 0; k < plane; k++)
        for (int ch = 0; ch < c; ch++) {
            float v = src[ch * plane + k] * 255.0f + 0.5f;
            buf[k * c + ch] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    if (um_write_png(path, buf, h, w, c) != UM_OK) {
        lua_pushnil(L);
        lua_pushstring(L, um_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int ds_size(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_ds(L, 1)->n);
    return 1;
}

static int ds_num_classes(lua_State *L) {
    lua_pushinteger(L, check_ds(L, 1)->num_classes);
    return 1;
}

static int ds_shape(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    lua_pushinteger(L, ds->c);
    lua_pushinteger(L, ds->h);
    lua_pushinteger(L, ds->w);
    return 3;
}

static int ds_name(lua_State *L) {
    lua_pushstring(L, check_ds(L, 1)->name);
    return 1;
}

/* get(i) -> image (C x H x W float32 in [0,1]), label (1-based; nil when unlabelled) */
static int ds_get(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || i > ds->n) return luaL_error(L, "get: index %I outside 1..%I", i, (lua_Integer)ds->n);
    int64_t idx = i - 1, size[4] = {1, ds->c, ds->h, ds->w};
    um_tensor **slot = um_lua_push_tensor_slot(L), *batch = NULL;
    if (um_tensor_new(slot, UM_FLOAT32, 3, size + 1, NULL) != UM_OK) return um_lua_raise(L, "get");
    /* a 1 x C x H x W view of the image, since batches are 4-d */
    int rc = um_view(&batch, *slot, 4, size);
    if (!rc) rc = um_dataset_batch(ds, &idx, 1, batch, NULL, 0, NULL, NULL);
    um_tensor_release(batch);
    if (rc) return um_lua_raise(L, "get");
    if (ds->labels[idx] >= 0) lua_pushinteger(L, (lua_Integer)ds->labels[idx] + 1);
    else lua_pushnil(L);
    return 2;
}

static int ds_class_counts(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    int64_t counts[256];
    um_dataset_class_counts(ds, counts);
    lua_createtable(L, ds->num_classes, 0);
    for (int k = 0; k < ds->num_classes; k++) {
        lua_pushinteger(L, (lua_Integer)counts[k]);
        lua_rawseti(L, -2, k + 1);
    }
    return 1;
}

/* batch_into(x, y | nil, order | nil, first, count, flip, crop_pad, generator | nil):
 * images order[first+1 .. first+count] (1-based int64 tensor; nil: first+1 ..) into x
 * (count x C x H x W) and their 1-based labels into y. Returns x, y. */
static int ds_batch_into(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    um_tensor *x = um_lua_check_tensor(L, 2), *y = um_lua_opt_tensor(L, 3), *order = um_lua_opt_tensor(L, 4);
    lua_Integer first = luaL_checkinteger(L, 5), count = luaL_checkinteger(L, 6);
    um_augment aug = {.flip = lua_toboolean(L, 7), .crop_pad = (int)luaL_optinteger(L, 8, 0)};
    um_generator *g = lua_isnoneornil(L, 9) ? NULL : um_lua_check_generator(L, 9);
    int64_t len = order ? um_numel(order) : ds->n;
    if (first < 0 || count < 0 || first + count > len)
        return luaL_error(L, "batch_into: positions %I..%I outside 1..%I", first + 1, first + count, (lua_Integer)len);
    if (order && (order->dtype != UM_INT64 || order->ndim != 1 || !um_is_contiguous(order) || !um_backend_of(order)->is_host))
        return luaL_error(L, "batch_into: the order must be a contiguous 1-d int64 CPU tensor");
    int64_t *idx = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(count + 1), 0);
    for (int64_t k = 0; k < count; k++) idx[k] = order ? um_i64(order)[first + k] - 1 : first + k;
    if (um_dataset_batch(ds, idx, count, x, y, 1, &aug, g) != UM_OK) return um_lua_raise(L, "batch_into");
    lua_settop(L, 3);
    return 2;
}

/* gray_resize(height, width, name) -> a new data set: channel mean, resized (grayCIFAR). */
static int ds_gray_resize(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
    const char *name = luaL_checkstring(L, 4);
    luaL_argcheck(L, h >= 1 && h <= 4096 && w >= 1 && w <= 4096, 2, "sizes must be in 1..4096");
    dataset_box *box = push_box(L);
    if (um_dataset_gray_resize(&box->ds, ds, (int)h, (int)w, name) != UM_OK) return um_lua_raise(L, "gray_resize");
    return 1;
}

/* take(n): keep the first n images; returns the data set. */
static int ds_take(lua_State *L) {
    um_dataset *ds = check_ds(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "count must be >= 0");
    if (um_dataset_take(ds, n) != UM_OK) return um_lua_raise(L, "take");
    lua_settop(L, 1);
    return 1;
}

static int ds_free(lua_State *L) {
    dataset_box *box = luaL_checkudata(L, 1, UM_DATASET_MT);
    um_dataset_free(box->ds);
    box->ds = NULL;
    return 0;
}

static int ds_tostring(lua_State *L) {
    dataset_box *box = luaL_checkudata(L, 1, UM_DATASET_MT);
    char buf[256];
    lua_pushstring(L, box->ds ? um_dataset_describe(box->ds, buf, sizeof buf) : "dataset (freed)");
    return 1;
}

static const luaL_Reg ds_methods[] = {
    {"size", ds_size},   {"num_classes", ds_num_classes}, {"shape", ds_shape},
    {"name", ds_name},   {"get", ds_get},                 {"class_counts", ds_class_counts},
    {"batch_into", ds_batch_into}, {"gray_resize", ds_gray_resize}, {"take", ds_take},
    {"free", ds_free},
    {NULL, NULL}};

static const luaL_Reg ds_meta[] = {
    {"__gc", ds_free}, {"__close", ds_free}, {"__len", ds_size}, {"__tostring", ds_tostring}, {NULL, NULL}};

static const luaL_Reg data_functions[] = {
    {"data_read_idx", read_idx},   {"data_read_cifar", read_cifar}, {"data_read_svhn", read_svhn},
    {"data_read_png_folder", read_png_folder}, {"data_write_png", write_png}, {NULL, NULL}};

void um_lua_open_data(lua_State *L, int module) {
    module = lua_absindex(L, module);
    if (luaL_newmetatable(L, UM_DATASET_MT)) {
        luaL_setfuncs(L, ds_meta, 0);
        luaL_newlib(L, ds_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushvalue(L, module);
    luaL_setfuncs(L, data_functions, 0);
    lua_pop(L, 1);
}
