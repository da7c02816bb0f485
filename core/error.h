/* Status codes and the thread-local error message of the umbra core.
 * Every fallible function returns int: UM_OK (0) or a negative UM_E* code,
 * and records "what, expected vs got" with um_fail(). */
#ifndef UM_ERROR_H
#define UM_ERROR_H

enum {
    UM_OK = 0,
    UM_EINVAL = -1,   /* bad argument: shape, dtype, range */
    UM_ENOMEM = -2,   /* allocation failed */
    UM_EIO = -3,      /* file could not be opened, read or written */
    UM_EFORMAT = -4,  /* file or data in the wrong format, truncated or corrupt */
    UM_EDEVICE = -5,  /* device mismatch or device error */
    UM_ENOTIMPL = -6, /* operation not available on this backend or dtype */
    UM_ENUMERIC = -7, /* NaN or infinity where a finite value is required */
    UM_EINTR = -8     /* interrupted (Ctrl-C) between iterations of a long loop */
};

/* Record a printf-style message and return code (so: return um_fail(UM_EINVAL, ...)). */
int um_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "prefix: " (used by containers to add a module path). */
void um_error_prefix(const char *prefix);
const char *um_last_error(void);

/* Interrupts: a program's SIGINT handler calls um_request_interrupt() (async-signal-safe);
 * long C loops (PGD, bootstrap resampling) test um_interrupt_requested() between
 * iterations and return UM_EINTR. The program clears the flag before its next call. */
void um_request_interrupt(void);
int um_interrupt_requested(void);
void um_clear_interrupt(void);

#endif
