/* umbra.core functions for run folders: lock_folder(dir) takes an exclusive flock on
 * dir/.lock (writing the holder's pid into it) so that two trainings never share a run
 * folder; process_alive(pid) for removing temporary files of processes that died; and
 * list_dir(dir), the names in a folder; getpid(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "binding.h"

#define LOCK_MT "umbra.folder_lock"

typedef struct { int fd; } folder_lock;

static int lock_release(lua_State *L) {
    folder_lock *l = luaL_checkudata(L, 1, LOCK_MT);
    if (l->fd >= 0) {
        /* the file stays: removing it would let a third process lock a new inode while a
         * second still waits on the old one */
        flock(l->fd, LOCK_UN);
        close(l->fd);
        l->fd = -1;
    }
    return 0;
}

/* lock_folder(dir) -> lock | nil, message. The lock is released by lock:release(), when
 * it is collected or closed (<close>), or when the process ends, however it ends. */
static int lock_folder(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path) return luaL_error(L, "lock_folder: path too long");
    folder_lock *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot open the run folder's lock file (%s)", path, strerror(errno));
        return 2;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        close(fd);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        lua_pushnil(L);
        if (err == EWOULDBLOCK && pid > 0)
            lua_pushfstring(L, "run folder %s is in use by process %d (it holds %s); wait for it or stop it first", dir, (int)pid, path);
        else
            lua_pushfstring(L, "%s: cannot lock the run folder (%s)", path, strerror(err));
        return 2;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot write the lock file (%s)", path, strerror(err));
        return 2;
    }
    l->fd = fd;
    return 1;
}

/* process_alive(pid) -> boolean: whether a process with that id exists (ours or not). */
static int process_alive(lua_State *L) {
    lua_Integer pid = luaL_checkinteger(L, 1);
    lua_pushboolean(L, pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM));
    return 1;
}

static int l_getpid(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* list_dir(dir) -> {names} (without "." and "..") | nil, message */
static int list_dir(lua_State *L) {
    const char *dir = luaL_checkstring(L, 1);
    DIR *d = opendir(dir);
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot list (%s)", dir, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    return 1;
}

void um_lua_open_runfolder(lua_State *L, int module) {
    if (luaL_newmetatable(L, LOCK_MT)) {
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "__close");
        lua_newtable(L);
        lua_pushcfunction(L, lock_release);
        lua_setfield(L, -2, "release");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    const luaL_Reg f[] = {{"lock_folder", lock_folder}, {"process_alive", process_alive}, {"list_dir", list_dir},
                          {"getpid", l_getpid}, {NULL, NULL}};
    lua_pushvalue(L, module);
    luaL_setfuncs(L, f, 0);
    lua_pop(L, 1);
}
