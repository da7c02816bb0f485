/* The digest block of checkpoints (see h5io_seal.h). The header is regenerated from the
 * numbers it states and compared byte for byte, so a change anywhere in the block, the
 * zero padding included, is refused as well as a change in the HDF5 bytes after it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "error.h"
#include "io/crc32c.h"
#include "io/h5io_seal.h"

#define SEAL_MAGIC "UMBRA-CHECKPOINT\n"
static const uint8_t hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static void format_header(char *hdr, uint64_t len, uint32_t crc) {
    memset(hdr, 0, UM_H5_SEAL_BYTES);
    snprintf(hdr, UM_H5_SEAL_BYTES,
             SEAL_MAGIC "version 2\nbytes %" PRIu64 "\ncrc32c %08" PRIx32 "\n"
             "The HDF5 file starts at byte 512 (a user block before it); the CRC32C covers every byte after this block.\n",
             len, crc);
}

/* Exported by libhdf5 since 1.8.7 (H5private.h): the Jenkins lookup3 hash of its metadata. */
extern uint32_t H5_checksum_metadata(const void *data, size_t len, uint32_t initval);

int um_h5_fix_superblock(uint8_t *sb, size_t n) {
    /* version 2/3 superblock with 8-byte addresses and lengths: 44 bytes, then the checksum */
    if (n < 48 || memcmp(sb, hdf5_signature, 8) != 0 || (sb[8] != 2 && sb[8] != 3) || sb[9] != 8 || sb[10] != 8) return -1;
    uint32_t sum = H5_checksum_metadata(sb, 44, 0);
    for (int i = 0; i < 4; i++) sb[44 + i] = (uint8_t)(sum >> (8 * i));
    return 0;
}

void um_h5_seal_image(uint8_t *image, size_t len) {
    uint32_t crc = um_crc32c(image + UM_H5_SEAL_BYTES, len - UM_H5_SEAL_BYTES);
    format_header((char *)image, (uint64_t)len, crc);
}

static int stream_crc(FILE *f, const char *path, uint32_t *crc) {
    static __thread uint8_t buf[1 << 16];
    size_t n;
    *crc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *crc = um_crc32c_extend(*crc, buf, n);
    if (ferror(f)) return um_fail(UM_EIO, "%s: read error (%s)", path, strerror(errno));
    return UM_OK;
}

int um_h5_verify_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return um_fail(UM_EIO, "%s: cannot open (%s)", path, strerror(errno));
    char hdr[UM_H5_SEAL_BYTES], want[UM_H5_SEAL_BYTES];
    struct stat st;
    size_t got = fread(hdr, 1, sizeof hdr, f);
    int rc;
    uint64_t len = 0;
    uint32_t crc = 0, actual;
    if (fstat(fileno(f), &st) != 0 || ferror(f)) {
        rc = um_fail(UM_EIO, "%s: cannot read (%s)", path, strerror(errno));
    } else if (got >= sizeof hdf5_signature && memcmp(hdr, hdf5_signature, sizeof hdf5_signature) == 0) {
        rc = UM_H5_LEGACY;
    } else if (got < sizeof hdr || memcmp(hdr, SEAL_MAGIC, strlen(SEAL_MAGIC)) != 0) {
        rc = um_fail(UM_EFORMAT, "%s: not an umbra checkpoint (no \"UMBRA-CHECKPOINT\" header and no HDF5 signature at byte 0; "
                     "truncated or damaged?)", path);
    } else if (sscanf(hdr + strlen(SEAL_MAGIC), "version 2\nbytes %" SCNu64 "\ncrc32c %" SCNx32, &len, &crc) != 2 ||
               (format_header(want, len, crc), memcmp(want, hdr, sizeof hdr) != 0)) {
        rc = um_fail(UM_EFORMAT, "%s: the checkpoint's digest header (first %d bytes) is damaged", path, UM_H5_SEAL_BYTES);
    } else if ((uint64_t)st.st_size != len) {
        rc = um_fail(UM_EFORMAT, "%s: the checkpoint has %lld bytes, its header says %" PRIu64 " (truncated or appended to)",
                     path, (long long)st.st_size, len);
    } else if ((rc = stream_crc(f, path, &actual)) == UM_OK) {
        rc = actual == crc ? UM_H5_SEALED
                           : um_fail(UM_EFORMAT, "%s: checkpoint digest mismatch (CRC32C %08" PRIx32 ", header says %08" PRIx32
                                     "): the file was damaged or changed after it was written", path, actual, crc);
    }
    fclose(f);
    return rc;
}
