/* The REPL of the umbra executable: readline with history in ~/.umbra_history, Tab
 * completion (globals, fields of tables, methods of the value before ':' or '.'), values
 * of expressions printed readably (umbra.repl.show), Ctrl-C abandoning the line being
 * typed (the state stays), Ctrl-D quitting. What to complete and how to print live in
 * lua/umbra/repl.lua; this file is the terminal side. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lua.h>
#include <readline/history.h>
#include <readline/readline.h>
#include "exe.h"

static char history_path[PATH_MAX];
static lua_State *repl_state; /* for the completion callback */
static volatile sig_atomic_t sigint_seen;
static int read_interrupted; /* Ctrl-C came during the current read_line */

/* Ctrl-C while readline waits (readline does not catch signals here, see umbra_repl):
 * the read is interrupted, and readline calls after_signal. */
static void on_prompt_sigint(int sig) {
    (void)sig;
    sigint_seen = 1;
}

/* Abandon the line being typed (and, through read_interrupted, the lines of an unfinished
 * statement before it): show ^C and a fresh prompt; readline goes on reading. */
static int after_signal(void) {
    if (!sigint_seen) return 0;
    sigint_seen = 0;
    read_interrupted = 1;
    fputs("^C\n", stdout);
    fflush(stdout);
    rl_replace_line("", 0);
    rl_set_prompt("> ");
    rl_on_new_line();
    rl_redisplay();
    return 0;
}

/* NULL at end of input (Ctrl-D); read_interrupted tells whether a Ctrl-C came first. */
static char *read_line(const char *prompt) {
    read_interrupted = 0;
    if (!isatty(STDIN_FILENO)) {
        static char buf[4096];
        fputs(prompt, stdout);
        fflush(stdout);
        if (!fgets(buf, sizeof buf, stdin)) return NULL;
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
    }
    sigint_seen = 0;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_prompt_sigint; /* no SA_RESTART: the read must see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    char *line = readline(prompt);
    sigaction(SIGINT, &old, NULL);
    return line;
}

static void remember(const char *line) {
    if (!isatty(STDIN_FILENO) || !*line) return;
    add_history(line);
    if (*history_path) append_history(1, history_path);
}

/* ---- completion: asks umbra.repl.complete(line_before_word_end, word) --------------- */

static char **candidates;
static int n_candidates;

static void drop_candidates(void) {
    for (int i = 0; i < n_candidates; i++) free(candidates[i]);
    free(candidates);
    candidates = NULL;
    n_candidates = 0;
}

static char *next_candidate(const char *text, int state) {
    static int i;
    (void)text;
    if (state == 0) i = 0;
    return i < n_candidates ? strdup(candidates[i++]) : NULL;
}

static void ask_lua(const char *text, int end) {
    lua_State *L = repl_state;
    int top = lua_gettop(L);
    drop_candidates();
    lua_getglobal(L, "require");
    lua_pushliteral(L, "umbra.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "complete");
        lua_pushlstring(L, rl_line_buffer, (size_t)end);
        lua_pushstring(L, text);
        if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            int n = (int)luaL_len(L, -1);
            candidates = calloc((size_t)n + 1, sizeof *candidates);
            for (int k = 1; candidates && k <= n; k++) {
                lua_rawgeti(L, -1, k);
                const char *c = lua_tostring(L, -1);
                if (c) candidates[n_candidates++] = strdup(c);
                lua_pop(L, 1);
            }
        }
    }
    lua_settop(L, top);
}

static char **complete(const char *text, int start, int end) {
    (void)start;
    rl_attempted_completion_over = 1; /* never file names */
    rl_completion_append_character = '\0';
    ask_lua(text, end);
    return n_candidates ? rl_completion_matches(text, next_candidate) : NULL;
}

/* ---- reading and running ----------------------------------------------------------- */

/* Compile `return <line>`, so that an expression shows its values. */
static int load_as_expression(lua_State *L, const char *line) {
    const char *code = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
    lua_remove(L, -2);
    if (status != LUA_OK) lua_pop(L, 1);
    return status;
}

static int incomplete(lua_State *L, int status) {
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    return status == LUA_ERRSYNTAX && len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

enum { INPUT_END = -1 };

/* Read one input (several lines while the statement is incomplete) and compile it.
 * Returns INPUT_END or the load status with the chunk or the error on top. A line typed
 * after a Ctrl-C starts a new statement. */
static int load_input(lua_State *L) {
    char *line = read_line("> ");
    if (!line) return INPUT_END;
    if (load_as_expression(L, line) == LUA_OK) {
        remember(line);
        free(line);
        return LUA_OK;
    }
    lua_pushstring(L, line);
    free(line);
    for (int first = 1;; first = 0) {
        size_t len;
        const char *code = lua_tolstring(L, -1, &len);
        /* A completed multi-line expression also shows its values. */
        if (!first && load_as_expression(L, code) == LUA_OK) {
            remember(code);
            lua_remove(L, -2);
            return LUA_OK;
        }
        int status = luaL_loadbuffer(L, code, len, "=stdin");
        if (!incomplete(L, status)) {
            remember(lua_tostring(L, -2));
            lua_remove(L, -2);
            return status;
        }
        lua_pop(L, 1);
        char *more = read_line(">> ");
        if (!more) {
            lua_pop(L, 1);
            return INPUT_END;
        }
        if (read_interrupted) {
            lua_pop(L, 1);
            lua_pushstring(L, more);
            free(more);
            if (load_as_expression(L, lua_tostring(L, -1)) == LUA_OK) {
                remember(lua_tostring(L, -2));
                lua_remove(L, -2);
                return LUA_OK;
            }
            continue; /* a statement over several lines again */
        }
        lua_pushstring(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3);
    }
}

/* Print the values on the stack with umbra.repl.show (plain print if that fails). */
static void print_results(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "require");
    lua_pushliteral(L, "umbra.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        lua_getfield(L, -1, "show");
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
        fprintf(stderr, "%s: error printing the values (%s)\n", umbra_progname, lua_tostring(L, -1));
}

void umbra_repl(lua_State *L) {
    const char *home = getenv("HOME");
    repl_state = L;
    if (isatty(STDIN_FILENO)) {
        rl_readline_name = "umbra";
        /* '.' and ':' stay inside the word, so "x:si" completes as a whole */
        rl_completer_word_break_characters = " \t\n\"'`@$><=;|&{}()[],+-*/%^~#";
        rl_attempted_completion_function = complete;
        rl_signal_event_hook = after_signal;
        rl_catch_signals = 0; /* Ctrl-C clears the line (after_signal), it does not end readline */
        if (home) {
            snprintf(history_path, sizeof history_path, "%s/.umbra_history", home);
            read_history(history_path);
            if (!umbra_exists(history_path)) write_history(history_path);
            history_truncate_file(history_path, 2000);
        }
    }
    for (;;) {
        lua_settop(L, 0);
        int status = load_input(L);
        if (status == INPUT_END) break;
        if (status == LUA_OK) status = umbra_docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) print_results(L);
        else fprintf(stderr, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
    }
    drop_candidates();
    lua_settop(L, 0);
    putchar('\n');
}
