/* What the executable's two files share: main.c (command line, paths, protected calls)
 * and repl.c (the interactive loop). */
#ifndef UMBRA_EXE_H
#define UMBRA_EXE_H
#include <lua.h>

extern const char *umbra_progname;
/* lua_pcall with a traceback, interruptible by Ctrl-C. */
int umbra_docall(lua_State *L, int narg, int nres);
/* Print the error at the top of the stack when status says there is one; returns status. */
int umbra_report(lua_State *L, int status);
int umbra_exists(const char *path);
void umbra_repl(lua_State *L);
#endif
