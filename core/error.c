/* Thread-local error message of the core, and the interrupt flag. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "error.h"

#define UM_ERRLEN 1024
static _Thread_local char um_errmsg[UM_ERRLEN];

int um_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(um_errmsg, sizeof um_errmsg, fmt, ap);
    va_end(ap);
    return code;
}

void um_error_prefix(const char *prefix) {
    char tmp[UM_ERRLEN + 256];
    if (!prefix || !*prefix) return;
    size_t n = strlen(prefix);
    /* a container adds its path only once, even when an error travels up several levels */
    if (strncmp(um_errmsg, prefix, n) == 0 && (um_errmsg[n] == ':' || um_errmsg[n] == '.')) return;
    snprintf(tmp, sizeof tmp, "%s: %s", prefix, um_errmsg);
    size_t len = strlen(tmp);
    if (len >= UM_ERRLEN) len = UM_ERRLEN - 1;
    memcpy(um_errmsg, tmp, len);
    um_errmsg[len] = 0;
}

const char *um_last_error(void) { return um_errmsg; }

static volatile sig_atomic_t interrupt_flag;
void um_request_interrupt(void) { interrupt_flag = 1; }
int um_interrupt_requested(void) { return interrupt_flag != 0; }
void um_clear_interrupt(void) { interrupt_flag = 0; }
