/* TensorBoard event files written by umbra itself: the TFRecord framing (uint64 length,
 * masked CRC32C of the length, the payload, masked CRC32C of the payload) around Event
 * protocol buffers holding scalar summaries. Each record is flushed, so a crash loses at
 * most the record being written. */
#ifndef UM_TBEVENTS_H
#define UM_TBEVENTS_H
#include <stddef.h>
#include <stdint.h>

typedef struct um_tb_writer um_tb_writer;

/* Create dir/events.out.tfevents.<time>.<host> (dir must exist) and write the
 * file_version event. */
int um_tb_open(um_tb_writer **out, const char *dir);
int um_tb_scalar(um_tb_writer *w, const char *tag, int64_t step, double wall_time, float value);
/* One Event whose Summary holds value: the bytes of an encoded Summary.Value (histogram,
 * text, ...), which the caller builds. */
int um_tb_value(um_tb_writer *w, int64_t step, double wall_time, const void *value, size_t n);
const char *um_tb_path(const um_tb_writer *w);
void um_tb_close(um_tb_writer *w);   /* NULL is fine */

/* Encode one scalar Event into buf (returns its length, or -1 if cap is too small). */
int um_tb_encode_scalar(uint8_t *buf, int cap, const char *tag, int64_t step, double wall_time, float value);

#endif
