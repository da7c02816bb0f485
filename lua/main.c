/* The umbra executable: a Lua 5.4 interpreter with umbra.core linked in (preloaded) and
 * package.path pointing at the library when run from the source tree or an install.
 * `umbra` opens the REPL (repl.c); `umbra script.lua args...` runs a script with the global `arg` as lua.c
 * sets it; -e, -l, -i, -v/--version, -h/--help as in lua; the library is the global `umbra`
 * in every mode. Errors: traceback, exit 1.
 * Before anything else it settles how the two thread pools wait (see settle_thread_pools). */
#define _GNU_SOURCE   /* sched_setaffinity, CPU_SET */
#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include "exe.h"
#include "umbra.h"

int luaopen_umbra_core(lua_State *L);

const char *umbra_progname = "umbra";
static lua_State *running_state; /* for the SIGINT handler */

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: %s [options] [script [args]]\n"
            "  -e stat   execute string 'stat'\n"
            "  -l mod    require 'mod' into global 'mod' (-l g=mod: into global 'g')\n"
            "  -i        enter interactive mode after running the script\n"
            "  -v        show version information (also --version)\n"
            "  -h        show this help (also --help)\n"
            "  --        stop handling options\n"
            "  -         run stdin as a script\n"
            "With no arguments: a REPL that prints the values of expressions.\n",
            umbra_progname);
}

/* ---- calling Lua with a traceback, interruptible by Ctrl-C ------------------------ */

static void stop_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* Signal handlers may only set a hook, which raises at the next Lua instruction. */
static void on_sigint(int sig) {
    signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
    um_request_interrupt(); /* long C loops stop between iterations (UM_EINTR) */
    lua_sethook(running_state, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int umbra_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    running_state = L;
    um_clear_interrupt();
    signal(SIGINT, on_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_remove(L, base);
    return status;
}

/* Print the error at the top of the stack (if status says there is one). */
int umbra_report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", umbra_progname, msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = umbra_docall(L, 0, 0);
    return umbra_report(L, status);
}

/* ---- paths ------------------------------------------------------------------------ */

int umbra_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Strip the last path component in place ("/a/b/c" -> "/a/b"). */
static void parent_dir(char *path) {
    char *slash = strrchr(path, '/');
    if (slash && slash != path) *slash = '\0';
    else if (slash) slash[1] = '\0';
}

/* Prepend the library's directories to package.path: from a build directory inside the
 * source tree (<repo>/<build>/umbra), <repo>/lua and <repo> (for models.*, recipes.*);
 * from an install (PREFIX/bin/umbra), PREFIX/share/lua/5.4 and PREFIX/share/umbra. */
static char root[PATH_MAX];     /* the repository, or PREFIX; "" when unknown */
static const char *shared = ""; /* where models/ and recipes/ are below root */

static void set_paths(lua_State *L) {
    char probe[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
    if (n <= 0) {
        root[0] = '\0';
        return;
    }
    root[n] = '\0';
    parent_dir(root); /* the directory of the executable */
    parent_dir(root); /* the repository, or PREFIX */
    static const char *const tree[] = {"/lua/?.lua;", "/lua/?/init.lua;", "/?.lua;", "/?/init.lua;", NULL};
    static const char *const installed[] = {"/share/lua/5.4/?.lua;", "/share/lua/5.4/?/init.lua;",
                                            "/share/umbra/?.lua;", "/share/umbra/?/init.lua;", NULL};
    snprintf(probe, sizeof probe, "%.*s/lua/umbra/init.lua", PATH_MAX - 1, root);
    const char *const *dirs = umbra_exists(probe) ? tree : installed;
    shared = dirs == tree ? "" : "/share/umbra";
    lua_getglobal(L, "package");
    int package = lua_gettop(L), pieces = 0;
    for (int k = 0; dirs[k]; k++, pieces += 2) {
        lua_pushstring(L, root);
        lua_pushstring(L, dirs[k]);
    }
    lua_getfield(L, package, "path");
    lua_concat(L, pieces + 1);
    lua_setfield(L, package, "path");
    lua_pop(L, 1);
}

static void preload_core(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_umbra_core);
    lua_setfield(L, -2, "umbra.core");
    lua_pop(L, 1);
}

/* ---- command line ------------------------------------------------------------------ */

typedef struct {
    int interactive, version, help, script; /* script: argv index, 0 if none */
} options;

/* Check the options; returns 0 on a bad one. -e/-l take the next argument. */
static int collect_args(int argc, char **argv, options *o) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-i") == 0) o->interactive = 1;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) o->version = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) o->help = 1;
        else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "%s: '%s' needs an argument\n", umbra_progname, a);
                return 0;
            }
        } else {
            fprintf(stderr, "%s: unrecognized option '%s'\n", umbra_progname, a);
            return 0;
        }
    }
    o->script = i < argc ? i : 0;
    return 1;
}

/* arg[0] is the script, arg[1..] its arguments, negative indices the interpreter and
 * options (as lua.c does). */
static void create_arg_table(lua_State *L, int argc, char **argv, int script) {
    int shift = script ? script : argc - 1;
    lua_createtable(L, argc - shift, shift + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - shift);
    }
    lua_setglobal(L, "arg");
}

/* -l mod or -l g=mod: global g (default: mod) = require(mod). */
static int require_into_global(lua_State *L, const char *spec) {
    const char *eq = strchr(spec, '=');
    const char *mod = eq ? eq + 1 : spec;
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    int status = umbra_docall(L, 1, 1);
    if (status == LUA_OK) {
        if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
        else lua_pushstring(L, mod);
        lua_insert(L, -2);
        lua_setglobal(L, lua_tostring(L, -2));
        lua_pop(L, 1);
    }
    return umbra_report(L, status);
}

static int run_options(lua_State *L, int argc, char **argv, int script) {
    int end = script ? script : argc;
    for (int i = 1; i < end; i++) {
        int status = LUA_OK;
        if (strcmp(argv[i], "-e") == 0) {
            const char *code = argv[++i];
            status = dochunk(L, luaL_loadbuffer(L, code, strlen(code), "=(command line)"));
        } else if (strcmp(argv[i], "-l") == 0) {
            status = require_into_global(L, argv[++i]);
        }
        if (status != LUA_OK) return 0;
    }
    return 1;
}

/* A script that is not where the name says, taken from the checkout or the install
 * (PREFIX/share/umbra): "recipes/train.lua" as a path below it, "train" as a recipe. */
static const char *find_script(const char *name, char *buf, size_t size) {
    if (umbra_exists(name) || name[0] == '/' || !root[0]) return name;
    snprintf(buf, size, "%s%s/%s", root, shared, name);
    if (umbra_exists(buf)) return buf;
    if (!strchr(name, '/') && !strstr(name, ".lua")) {
        snprintf(buf, size, "%s%s/recipes/%s.lua", root, shared, name);
        if (umbra_exists(buf)) return buf;
    }
    return name;
}

static int run_script(lua_State *L, int argc, char **argv, int script) {
    char found[2 * PATH_MAX];
    const char *fname = strcmp(argv[script], "-") == 0 ? NULL : find_script(argv[script], found, sizeof found);
    if (fname && fname != argv[script]) { /* arg[0] names the file that runs */
        lua_getglobal(L, "arg");
        lua_pushstring(L, fname);
        lua_rawseti(L, -2, 0);
        lua_pop(L, 1);
    }
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = argc - script - 1;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
        status = umbra_docall(L, n, 0);
    }
    return umbra_report(L, status) == LUA_OK;
}

/* Everything that may raise runs inside this protected function. */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    options o = {0};
    if (argv[0] && argv[0][0]) umbra_progname = argv[0];
    if (!collect_args(argc, argv, &o)) {
        print_usage(stderr);
        return 0;
    }
    if (o.help) {
        print_usage(stdout);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (o.version) {
        printf("umbra %s (%s)\n", UMBRA_VERSION, LUA_VERSION);
        fflush(stdout);
        lua_pushboolean(L, 1);
        return 1;
    }
    luaL_checkversion(L);
    luaL_openlibs(L);
    preload_core(L);
    set_paths(L);
    create_arg_table(L, argc, argv, o.script);
    /* the library as the global `umbra` in every mode (-e, scripts, the REPL) */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "umbra");
    if (umbra_docall(L, 1, 1) != LUA_OK) {
        umbra_report(L, LUA_ERRRUN);
        return 0;
    }
    lua_setglobal(L, "umbra");
    int ran_e = 0;
    for (int i = 1; i < (o.script ? o.script : argc); i++) ran_e |= strcmp(argv[i], "-e") == 0;
    if (!run_options(L, argc, argv, o.script)) return 0;
    if (o.script && !run_script(L, argc, argv, o.script)) return 0;
    if (o.interactive) umbra_repl(L);
    else if (!o.script && !ran_e) {
        if (isatty(STDIN_FILENO)) {
            printf("umbra %s (%s); the library is the global 'umbra'\n", UMBRA_VERSION,
                   LUA_VERSION);
            umbra_repl(L);
        } else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
            return 0;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* With OMP_PROC_BIND or OMP_PLACES set, OpenMP has bound this (initial) thread to its
 * first place before main, and execv keeps that mask: the new start would see one CPU
 * and bind every thread to it (2 threads ran as slowly as 1). Give the thread back the
 * CPUs of all the places first. No places (no binding asked): nothing to do. (OpenMP's
 * threads then spread as asked; OpenBLAS's own workers, started from the bound first
 * thread, share its CPU.) */
static void unbind_before_restart(void) {
    const int places = omp_get_num_places();
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int p = 0; p < places; p++) {
        int ids[CPU_SETSIZE], n = omp_get_place_num_procs(p);
        if (n <= 0 || n > CPU_SETSIZE) continue;
        omp_get_place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < CPU_SETSIZE) CPU_SET(ids[i], &all);
    }
    if (CPU_COUNT(&all) > 0) sched_setaffinity(0, sizeof all, &all);
}

/* OpenBLAS (its pthreads build) and OpenMP each keep a pool of worker threads, and by
 * default both spin long after their work. With as many threads as cores, a spinning
 * OpenBLAS worker takes the core an OpenMP worker needs next (im2col, pooling, ReLU) and
 * the other way round. So OpenMP workers spin 10,000 rounds (GOMP_SPINCOUNT) and OpenBLAS
 * workers 2^16 cycles before they sleep: sleeping at once (OMP_WAIT_POLICY=passive) would
 * cost ResNetSmall, whose backward opens about a hundred short parallel regions, each then
 * waking a sleeping worker, and spinning longer slows PGD on LeNet (its fully connected
 * layer runs OpenBLAS's threads). Figures: docs/performance.md §3. Both libraries read
 * these settings only when they load, before main: so set them (unless the user did) and
 * start this program again, once. If the new start fails, carry on as things are. */
static void settle_thread_pools(char **argv) {
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        setenv("GOMP_SPINCOUNT", "10000", 1);
        changed = 1;
    }
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) {
        /* 2^16 cycles (~20 us): back-to-back sgemms keep their workers (a shorter timeout
         * slowed 256^3 products at 2 threads), while an OpenMP region finds the core free */
        setenv("OPENBLAS_THREAD_TIMEOUT", "16", 1);
        changed = 1;
    }
    if (!changed) return;
    cpu_set_t bound;
    const int have_mask = sched_getaffinity(0, sizeof bound, &bound) == 0;
    unbind_before_restart();
    execv("/proc/self/exe", argv);
    if (have_mask) sched_setaffinity(0, sizeof bound, &bound);   /* it failed: as things were */
}

int main(int argc, char **argv) {
    settle_thread_pools(argv);
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", argv[0]);
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    umbra_report(L, status);
    lua_close(L);
    return status == LUA_OK && ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
