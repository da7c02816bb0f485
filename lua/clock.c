/* umbra.core.clock(): monotonic wall-clock seconds (os.clock counts CPU time summed over
 * threads, which misleads timings of multi-threaded work). */
#include <time.h>
#include "binding.h"

static int l_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    return 1;
}

void um_lua_open_clock(lua_State *L, int module) {
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, module, "clock");
}
