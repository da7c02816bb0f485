/* The digest block of umbra checkpoints (format version 2): the first 512 bytes of the file
 * are an HDF5 user block that HDF5 skips, holding a text header with the file's length and
 * the CRC32C of every byte after the block. It is checked by streaming the file before
 * libhdf5 parses anything, so a damaged or edited file is refused without trusting its
 * structure. Files of version 1 have no such block (HDF5's signature at byte 0). */
#ifndef UM_H5IO_SEAL_H
#define UM_H5IO_SEAL_H
#include <stddef.h>
#include <stdint.h>

#define UM_H5_SEAL_BYTES 512

/* HDF5 1.10's H5Fget_file_image returns a version 2 superblock whose checksum does not
 * match its bytes (h5dump then refuses the file): recompute it in the image's superblock
 * sb. -1 when sb is not a superblock of that kind. */
int um_h5_fix_superblock(uint8_t *sb, size_t n);

/* Write the header into image[0..512) for an image of len bytes (len >= 512). */
void um_h5_seal_image(uint8_t *image, size_t len);

enum { UM_H5_SEALED = 1, UM_H5_LEGACY = 2 };
/* Check path: UM_H5_SEALED (header and digest match), UM_H5_LEGACY (an HDF5 file without
 * the block: version 1 or a foreign file), or < 0 with a message naming the file (cannot
 * be read: the real errno; damaged header; length or digest mismatch). */
int um_h5_verify_file(const char *path);

#endif
