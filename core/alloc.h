/* The core allocator: 64-byte aligned blocks whose live bytes are counted, with a
 * test hook that makes the N-th next allocation fail and an out-of-memory hook
 * (the Lua binding runs a full garbage collection there) tried once before failing. */
#ifndef UM_ALLOC_H
#define UM_ALLOC_H
#include <stddef.h>
#include <stdint.h>

void *um_alloc(size_t bytes);           /* NULL on failure (message set) */
void *um_calloc(size_t bytes);
void um_dealloc(void *p);               /* NULL is fine */
int64_t um_live_bytes(void);            /* bytes currently allocated through um_alloc */
int64_t um_live_blocks(void);
/* Make allocation number n (1 = the next one) fail; n <= 0 turns the hook off. */
void um_alloc_fail_after(int64_t n);
/* Called once when an allocation fails, before a retry. */
void um_set_oom_hook(void (*hook)(void *ud), void *ud);
/* Run the out-of-memory hook now, if one is set (device allocators call it before a retry). */
void um_run_oom_hook(void);

#endif
