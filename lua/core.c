/* luaopen_umbra_core: builds the umbra.core module table from the parts of the binding
 * (each part's um_lua_open_<part> adds its functions), plus engine-wide functions:
 * threads, allocator counters for tests, the version, and the out-of-memory hook that
 * lets a failing core allocation first run a full Lua collection. */
#include "binding.h"

/* The parts of the binding, one per lua/<part>.c: to add one, add a line here. */
#define UM_LUA_PARTS(X) \
    X(tensor)           \
    X(generator)        \
    X(noise)            \
    X(tblog)            \
    X(clock)            \
    X(attack)           \
    X(tfckpt)           \
    X(nn)               \
    X(lua_module)       \
    X(optim)            \
    X(metrics)          \
    X(scores)           \
    X(detection)        \
    X(certify)          \
    X(apgd)             \
    X(data)             \
    X(checkpoint)       \
    X(runfolder)        \
    X(cuda)             \
    X(dist)

#define DECLARE_PART(name) void um_lua_open_##name(lua_State *L, int module);
UM_LUA_PARTS(DECLARE_PART)

/* The core calls this once when an allocation fails, then retries: dropped tensors that
 * the collector has not finalised yet may be holding the memory. The state is the one
 * that loaded the module; the hook is only reached from core calls made by that state. */
static lua_State *hooked_state;

static void oom_collect(void *ud) {
    lua_gc((lua_State *)ud, LUA_GCCOLLECT);
}

/* Closing the state removes the hook, so the core never calls into a dead state. */
static int unhook(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    if (lua_tothread(L, -1) == hooked_state) {
        um_set_oom_hook(NULL, NULL);
        hooked_state = NULL;
    }
    return 0;
}

static void install_oom_hook(lua_State *L) {
    /* busted and other loaders may run luaopen_umbra_core again in the same state: keep the
     * first sentinel, or dropping it would later unhook the live hook */
    if (lua_getfield(L, LUA_REGISTRYINDEX, "umbra.oom_hook") != LUA_TNIL) { lua_pop(L, 1); return; }
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    hooked_state = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_newuserdatauv(L, 1, 0);
    lua_newtable(L);
    lua_pushcfunction(L, unhook);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "umbra.oom_hook");
    um_set_oom_hook(oom_collect, hooked_state);
}

static int set_num_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "number of threads must be in 1..4096");
    um_set_num_threads((int)n);
    return 0;
}

static int get_num_threads(lua_State *L) {
    lua_pushinteger(L, um_get_num_threads());
    return 1;
}

static int live_bytes(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)um_live_bytes());
    return 1;
}

static int live_blocks(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)um_live_blocks());
    return 1;
}

/* alloc_fail_after(n): the n-th next core allocation fails (n <= 0: off). For tests. */
static int alloc_fail_after(lua_State *L) {
    um_alloc_fail_after((int64_t)luaL_checkinteger(L, 1));
    return 0;
}

/* has_device("cuda"): whether that backend is compiled in and a device is present. */
static int has_device(lua_State *L) {
    lua_pushboolean(L, um_find_backend(luaL_checkstring(L, 1)) != NULL);
    return 1;
}

static const luaL_Reg core_functions[] = {
    {"set_num_threads", set_num_threads}, {"get_num_threads", get_num_threads},
    {"live_bytes", live_bytes},           {"live_blocks", live_blocks},
    {"alloc_fail_after", alloc_fail_after}, {"has_device", has_device},
    {NULL, NULL}};

#define OPEN_PART(name) um_lua_open_##name(L, module);

int luaopen_umbra_core(lua_State *L) {
    lua_newtable(L);
    int module = lua_gettop(L);
    luaL_setfuncs(L, core_functions, 0);
    lua_pushliteral(L, UMBRA_VERSION);
    lua_setfield(L, module, "version");
    install_oom_hook(L);
    UM_LUA_PARTS(OPEN_PART)
    lua_settop(L, module);
    return 1;
}
