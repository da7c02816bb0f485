/* Lua binding of the noise generators (core/ood/noise.h): functions on umbra.core that the
 * pure-Lua module umbra.noise wraps. */
#include "binding.h"
#include "ood/noise.h"

static int l_noise_uniform_(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1);
    um_generator *g = um_lua_check_generator(L, 2);
    if (um_noise_uniform_(x, g)) return um_lua_raise(L, "noise.uniform");
    lua_settop(L, 1);
    return 1;
}

/* out = f(x) into a fresh tensor of x's shape */
static um_tensor **fresh_like(lua_State *L, um_tensor *x, const char *what) {
    um_tensor **slot = um_lua_push_tensor_slot(L);
    if (um_tensor_new(slot, UM_FLOAT32, x->ndim, x->size, um_backend_of(x))) um_lua_raise(L, what);
    return slot;
}

static int l_noise_permute_pixels(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1);
    um_generator *g = um_lua_check_generator(L, 2);
    um_tensor **out = fresh_like(L, x, "noise.permute_pixels");
    if (um_noise_permute_pixels(*out, x, g)) return um_lua_raise(L, "noise.permute_pixels");
    return 1;
}

static int l_noise_lowpass(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1);
    double sigma = luaL_checknumber(L, 2);
    um_tensor **out = fresh_like(L, x, "noise.lowpass");
    if (um_noise_lowpass(*out, x, (float)sigma)) return um_lua_raise(L, "noise.lowpass");
    return 1;
}

static int l_noise_rescale_(lua_State *L) {
    um_tensor *x = um_lua_check_tensor(L, 1);
    if (um_noise_rescale_(x)) return um_lua_raise(L, "noise.rescale");
    lua_settop(L, 1);
    return 1;
}

/* noise_authors(clean, generator, frac_perm, sigma_lo, sigma_hi) -> noise, sigma */
static int l_noise_authors(lua_State *L) {
    um_tensor *clean = um_lua_check_tensor(L, 1);
    um_generator *g = um_lua_check_generator(L, 2);
    double frac = luaL_optnumber(L, 3, 0.5), lo = luaL_optnumber(L, 4, 1.0), hi = luaL_optnumber(L, 5, 2.5);
    um_tensor **out = fresh_like(L, clean, "noise.authors");
    double sigma = 0;
    if (um_noise_authors(*out, clean, frac, lo, hi, g, &sigma)) return um_lua_raise(L, "noise.authors");
    lua_pushnumber(L, sigma);
    return 2;
}

static int l_gaussian_taps(lua_State *L) {
    float taps[2 * UM_LOWPASS_RADIUS + 1];
    double sigma = luaL_checknumber(L, 1);
    if (!(sigma > 0)) return luaL_error(L, "gaussian_taps: sigma must be positive, got %f", sigma);
    um_gaussian_taps((float)sigma, taps);
    lua_createtable(L, 2 * UM_LOWPASS_RADIUS + 1, 0);
    for (int i = 0; i < 2 * UM_LOWPASS_RADIUS + 1; i++) {
        lua_pushnumber(L, taps[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg noise_funcs[] = {
    {"noise_uniform_", l_noise_uniform_},
    {"noise_permute_pixels", l_noise_permute_pixels},
    {"noise_lowpass", l_noise_lowpass},
    {"noise_rescale_", l_noise_rescale_},
    {"noise_authors", l_noise_authors},
    {"gaussian_taps", l_gaussian_taps},
    {NULL, NULL}};

void um_lua_open_noise(lua_State *L, int tbl) {
    lua_pushvalue(L, tbl);
    luaL_setfuncs(L, noise_funcs, 0);
    lua_pop(L, 1);
}
