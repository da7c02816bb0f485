/* umbra.core.dist_*: the collectives of core/dist/ for Lua (lua/umbra/dist.lua is the
 * friendly face): init, rank/size, barrier, allreduce in place, broadcast, allgather,
 * a fused allreduce of a list of tensors (the gradients), its bucketed form overlapping the
 * backward pass, the device collectives' set-up
 * (NCCL or host copies) and abort. */
#include "binding.h"
#include "dist/dist.h"

static int l_init(lua_State *L) {
    if (um_dist_init()) return um_lua_raise(L, "dist.init");
    lua_pushinteger(L, um_dist_rank());
    lua_pushinteger(L, um_dist_size());
    return 2;
}

static int l_info(lua_State *L) {
    lua_createtable(L, 0, 6);
    lua_pushboolean(L, um_dist_initialized());
    lua_setfield(L, -2, "initialized");
    lua_pushboolean(L, um_dist_uses_mpi());
    lua_setfield(L, -2, "mpi");
    lua_pushinteger(L, um_dist_rank());
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, um_dist_size());
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, um_dist_local_rank());
    lua_setfield(L, -2, "local_rank");
    lua_pushinteger(L, um_dist_local_size());
    lua_setfield(L, -2, "local_size");
    return 1;
}

static int l_barrier(lua_State *L) {
    if (um_dist_barrier()) return um_lua_raise(L, "dist.barrier");
    return 0;
}

static um_dist_op check_op(lua_State *L, int i) {
    um_dist_op op = UM_DIST_SUM;
    if (um_dist_op_parse(luaL_optstring(L, i, "sum"), &op)) um_lua_raise(L, "dist.allreduce");
    return op;
}

/* allreduce(t [, op]) -> t, reduced in place */
static int l_allreduce(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    um_dist_op op = check_op(L, 2);
    if (um_dist_allreduce(t, op)) return um_lua_raise(L, "dist.allreduce");
    lua_settop(L, 1);
    return 1;
}

/* allreduce_many({t1, t2, ...} [, op]): one collective for the whole list */
static int l_allreduce_many(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    um_dist_op op = check_op(L, 2);
    int n = (int)luaL_len(L, 1);
    um_tensor **ts = lua_newuserdatauv(L, sizeof(um_tensor *) * (size_t)(n > 0 ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (!um_lua_is_tensor(L, -1))
            return luaL_error(L, "dist.allreduce_grads: entry %d of the list is a %s, expected a tensor", i + 1,
                              luaL_typename(L, -1));
        ts[i] = um_lua_check_tensor(L, -1);
        lua_pop(L, 1);   /* the list keeps it alive */
    }
    if (um_dist_allreduce_many(ts, n, op)) return um_lua_raise(L, "dist.allreduce_grads");
    return 0;
}

/* broadcast(t [, root]) -> t, overwritten with root's contents */
static int l_broadcast(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    lua_Integer root = luaL_optinteger(L, 2, 0);
    if (um_dist_broadcast(t, (int)root)) return um_lua_raise(L, "dist.broadcast");
    lua_settop(L, 1);
    return 1;
}

/* allgather(t) -> new tensor: the ranks' t concatenated along dimension 1 in rank order */
static int l_allgather(lua_State *L) {
    um_tensor *t = um_lua_check_tensor(L, 1);
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_dist_allgather(slot, t)) return um_lua_raise(L, "dist.allgather");
    return 1;
}

static int l_sync_batchnorm(lua_State *L) {
    if (um_dist_sync_batchnorm(lua_toboolean(L, 1))) return um_lua_raise(L, "dist.sync_batchnorm");
    return 0;
}

/* pick_local_gpu() -> the device id this rank now sees as its only GPU, or nil */
static int l_pick_local_gpu(lua_State *L) {
    char chosen[32];
    if (um_dist_pick_local_gpu(chosen, sizeof chosen)) return um_lua_raise(L, "dist.pick_local_gpu");
    if (chosen[0]) lua_pushstring(L, chosen);
    else lua_pushnil(L);
    return 1;
}

/* device_collectives() -> how device tensors are reduced ("NCCL 2.x.y on the device", ...) */
static int l_device_collectives(lua_State *L) {
    char how[640];
    if (um_dist_device_collectives(how, sizeof how)) return um_lua_raise(L, "dist.device_collectives");
    lua_pushstring(L, how);
    return 1;
}

/* buckets({grads...}, {extra...}, bucket_bytes) -> an object with :arm(), :finish() -> n
 * started during the backward, :count() (core/dist/buckets.c) */
#define BUCKETS_MT "umbra.dist_buckets"

static um_dist_buckets **check_buckets(lua_State *L) {
    um_dist_buckets **box = luaL_checkudata(L, 1, BUCKETS_MT);
    if (!*box) luaL_error(L, "dist.buckets: used after free");
    return box;
}

static int tensor_list(lua_State *L, int idx, um_tensor ***out) {
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    um_tensor **ts = lua_newuserdatauv(L, sizeof(um_tensor *) * (size_t)(n > 0 ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (!um_lua_is_tensor(L, -1))
            return luaL_error(L, "dist.buckets: entry %d of list %d is a %s, expected a tensor", i + 1, idx,
                              luaL_typename(L, -1));
        ts[i] = um_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    *out = ts;
    return n;
}

static int l_buckets(lua_State *L) {
    um_tensor **grads, **extra;
    int n_grads = tensor_list(L, 1, &grads), n_extra = tensor_list(L, 2, &extra);
    lua_Integer bytes = luaL_checkinteger(L, 3);
    um_dist_buckets **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, BUCKETS_MT);
    if (um_dist_buckets_new(box, grads, n_grads, extra, n_extra, (int64_t)bytes)) return um_lua_raise(L, "dist.buckets");
    return 1;
}

static int l_buckets_arm(lua_State *L) {
    if (um_dist_buckets_arm(*check_buckets(L))) return um_lua_raise(L, "dist.buckets:arm");
    return 0;
}

static int l_buckets_finish(lua_State *L) {
    int early = 0;
    if (um_dist_buckets_finish(*check_buckets(L), &early)) return um_lua_raise(L, "dist.buckets:finish");
    lua_pushinteger(L, early);
    return 1;
}

static int l_buckets_count(lua_State *L) {
    lua_pushinteger(L, um_dist_buckets_count(*check_buckets(L)));
    return 1;
}

static int l_buckets_gc(lua_State *L) {
    um_dist_buckets **box = luaL_checkudata(L, 1, BUCKETS_MT);
    um_dist_buckets_free(*box);
    *box = NULL;
    return 0;
}

static int l_abort(lua_State *L) {
    lua_Integer code = luaL_optinteger(L, 2, 1);
    um_dist_abort((int)code, luaL_optstring(L, 1, NULL));
    return 0;
}

static const luaL_Reg functions[] = {
    {"dist_init", l_init},           {"dist_info", l_info},         {"dist_barrier", l_barrier},
    {"dist_allreduce", l_allreduce}, {"dist_allreduce_many", l_allreduce_many},
    {"dist_broadcast", l_broadcast}, {"dist_allgather", l_allgather}, {"dist_abort", l_abort},
    {"dist_sync_batchnorm", l_sync_batchnorm}, {"dist_pick_local_gpu", l_pick_local_gpu},
    {"dist_device_collectives", l_device_collectives}, {"dist_buckets", l_buckets},
    {NULL, NULL}};

void um_lua_open_dist(lua_State *L, int module) {
    static const luaL_Reg bucket_methods[] = {
        {"arm", l_buckets_arm}, {"finish", l_buckets_finish}, {"count", l_buckets_count}, {NULL, NULL}};
    luaL_newmetatable(L, BUCKETS_MT);
    luaL_newlib(L, bucket_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_buckets_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushvalue(L, module);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
