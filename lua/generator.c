/* umbra.Generator(seed): an explicit Philox random stream as a Lua userdata holding the
 * um_generator itself. Scalars (uniform, normal, random), permutation(n) as a 1-based
 * int64 tensor, and an exact state()/set_state() pair. seed and counter are uint64 in C;
 * Lua sees their bit patterns as (possibly negative) integers, which round-trip exactly. */
#include <inttypes.h>
#include <stdio.h>
#include "tensor_lua.h"

static um_generator *push_generator(lua_State *L) {
    um_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
    luaL_setmetatable(L, UM_GENERATOR_MT);
    return g;
}

/* Generator(seed): seed is any integer. */
static int g_new(lua_State *L) {
    lua_Integer seed = luaL_checkinteger(L, 1);
    um_generator_init(push_generator(L), (uint64_t)seed);
    return 1;
}

/* uniform() in [0,1); uniform(lo, hi) in [lo,hi). */
static int g_uniform(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    lua_Number lo = luaL_optnumber(L, 2, 0.0), hi = luaL_optnumber(L, 3, 1.0);
    lua_pushnumber(L, lo + (hi - lo) * um_rand_uniform_double(g));
    return 1;
}

/* normal([mean=0, std=1]). */
static int g_normal(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    lua_Number mean = luaL_optnumber(L, 2, 0.0), std = luaL_optnumber(L, 3, 1.0);
    lua_pushnumber(L, mean + std * (lua_Number)um_rand_normal(g));
    return 1;
}

/* random(n) in 1..n, random(m, n) in m..n: math.random's conventions. */
static int g_random(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    lua_Integer lo = 1, hi = luaL_checkinteger(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        lo = hi;
        hi = luaL_checkinteger(L, 3);
    }
    if (lo > hi) return luaL_error(L, "random: empty interval [%I, %I]", lo, hi);
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1; /* 0 means all 2^64 values */
    uint64_t r = span ? um_rand_below(g, span)
                      : ((uint64_t)um_rand_below(g, UINT64_C(1) << 32) << 32) |
                            um_rand_below(g, UINT64_C(1) << 32);
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
    return 1;
}

/* permutation(n): int64 tensor holding 1..n in random order. */
static int g_permutation(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0, 2, "size must be >= 0");
    int64_t size = n;
    um_tensor **out = um_lua_push_tensor_slot(L);
    if (um_tensor_new(out, UM_INT64, 1, &size, NULL) != UM_OK) um_lua_raise(L, "permutation");
    int64_t *p = um_i64(*out);
    um_rand_permutation(g, p, size);
    for (int64_t i = 0; i < size; i++) p[i] += 1;
    return 1;
}

static int g_state(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)g->seed);
    lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)g->counter);
    lua_setfield(L, -2, "counter");
    return 1;
}

static uint64_t state_field(lua_State *L, const char *key) {
    int ok;
    lua_getfield(L, 2, key);
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "set_state: field '%s' must be an integer", key);
    lua_pop(L, 1);
    return (uint64_t)v;
}

/* set_state({seed =, counter =}) as returned by state(); returns self. */
static int g_set_state(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    uint64_t seed = state_field(L, "seed"), counter = state_field(L, "counter");
    g->seed = seed;
    g->counter = counter;
    lua_settop(L, 1);
    return 1;
}

/* An independent generator at the same point of the same stream. */
static int g_clone(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    *push_generator(L) = *g;
    return 1;
}

static int g_tostring(lua_State *L) {
    um_generator *g = um_lua_check_generator(L, 1);
    char buf[96];
    snprintf(buf, sizeof buf, "umbra.Generator(seed=%" PRIu64 ", counter=%" PRIu64 ")", g->seed,
             g->counter);
    lua_pushstring(L, buf);
    return 1;
}

static int g_is_generator(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, UM_GENERATOR_MT) != NULL);
    return 1;
}

static const luaL_Reg generator_methods[] = {
    {"uniform", g_uniform},         {"normal", g_normal}, {"random", g_random},
    {"permutation", g_permutation}, {"state", g_state},   {"set_state", g_set_state},
    {"clone", g_clone},             {NULL, NULL}};

void um_lua_open_generator(lua_State *L, int module) {
    module = lua_absindex(L, module);
    luaL_newmetatable(L, UM_GENERATOR_MT);
    lua_pushcfunction(L, g_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    luaL_setfuncs(L, generator_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, g_new);
    lua_setfield(L, module, "Generator");
    lua_pushcfunction(L, g_is_generator);
    lua_setfield(L, module, "is_generator");
}
