/* Folders of PNG images (LSUN classroom, ImageNet subsets) read with libpng's simplified
 * API, which keeps libpng's longjmp inside libpng: every image becomes 8-bit RGB (gray is
 * replicated; alpha is dropped, as PIL's convert("RGB") does) and is resized with
 * um_resize_u8. Also a PNG writer for saving images. */
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "alloc.h"
#include "data/data.h"
#include "error.h"

/* Images are resized to the data set's size, so no real one comes near this; a hostile
 * header declaring 100000x100000 would otherwise ask for 40 GB before decoding. */
#define PNG_MAX_SIDE 16384
#define PNG_MAX_PIXELS (1 << 26)

static int is_png_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && name[0] != '.' && strcasecmp(name + n - 4, ".png") == 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int64_t n) {
    for (int64_t i = 0; i < n; i++) um_dealloc(names[i]);
    um_dealloc(names);
}

/* The sorted *.png names of dir. */
static int list_pngs(const char *dir, char ***out, int64_t *count) {
    DIR *d = opendir(dir);
    if (!d) return um_fail(UM_EIO, "%s: cannot open the image folder (%s)", dir, strerror(errno));
    int64_t n = 0, cap = 0;
    char **names = NULL;
    int rc = UM_OK;
    for (struct dirent *e; (e = readdir(d)) && !rc;) {
        if (!is_png_name(e->d_name)) continue;
        if (n == cap) {
            int64_t ncap = cap ? 2 * cap : 256;
            char **grown = um_alloc(sizeof(char *) * (size_t)ncap);
            if (!grown) { rc = UM_ENOMEM; break; }
            if (n) memcpy(grown, names, sizeof(char *) * (size_t)n);
            um_dealloc(names);
            names = grown;
            cap = ncap;
        }
        size_t len = strlen(e->d_name) + 1;
        if (!(names[n] = um_alloc(len))) { rc = UM_ENOMEM; break; }
        memcpy(names[n++], e->d_name, len);
    }
    closedir(d);
    if (rc) { free_names(names, n); return rc; }
    if (n) qsort(names, (size_t)n, sizeof *names, compare_names);
    *out = names;
    *count = n;
    return UM_OK;
}

/* Decode path into CHW RGB at h x w into dst. */
static int load_one(const char *path, uint8_t *dst, int h, int w) {
    if (access(path, R_OK) != 0) return um_fail(UM_EIO, "%s: cannot open (%s)", path, strerror(errno));
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        int rc = um_fail(UM_EFORMAT, "%s: not a readable PNG image (libpng: %s)", path, img.message);
        png_image_free(&img);
        return rc;
    }
    if (img.width > PNG_MAX_SIDE || img.height > PNG_MAX_SIDE || (uint64_t)img.width * img.height > PNG_MAX_PIXELS) {
        int rc = um_fail(UM_EFORMAT, "%s: PNG of %ux%u pixels, larger than this reader's cap (%d per side, %d pixels)", path,
                         img.width, img.height, PNG_MAX_SIDE, PNG_MAX_PIXELS);
        png_image_free(&img);
        return rc;
    }
    img.format = PNG_FORMAT_RGBA;
    const int sh = (int)img.height, sw = (int)img.width;
    size_t plane = (size_t)sh * sw;
    uint8_t *rgba = um_alloc(plane * 4), *chw = um_alloc(plane * 3);
    int rc = UM_OK;
    if (!rgba || !chw) {
        rc = um_fail(UM_ENOMEM, "%s: out of memory for a %dx%d image", path, sw, sh);
    } else if (!png_image_finish_read(&img, NULL, rgba, 0, NULL)) {
        rc = um_fail(UM_EFORMAT, "%s: corrupt PNG image (libpng: %s)", path, img.message);
    } else {
        for (size_t k = 0; k < plane; k++)
            for (int ch = 0; ch < 3; ch++) chw[ch * plane + k] = rgba[4 * k + ch];
        rc = um_resize_u8(chw, 3, sh, sw, dst, h, w);
    }
    png_image_free(&img);
    um_dealloc(rgba);
    um_dealloc(chw);
    return rc;
}

int um_read_png_folder(um_dataset **out, const char *dir, int h, int w, int64_t limit, const char *name) {
    if (h < 1 || w < 1 || h > 4096 || w > 4096) return um_fail(UM_EINVAL, "read_png_folder: bad image size %dx%d", h, w);
    char **names = NULL;
    int64_t n = 0;
    int rc = list_pngs(dir, &names, &n);
    if (rc) return rc;
    if (n == 0) {
        um_dealloc(names);
        return um_fail(UM_EFORMAT, "%s: expected *.png images in the folder, found none", dir);
    }
    int64_t take = limit > 0 && limit < n ? limit : n;
    um_dataset *ds = NULL;
    size_t plen = strlen(dir) + 2;
    char *path = NULL;
    if (!(rc = um_dataset_new(&ds, name, take, 3, h, w, 0))) {
        for (int64_t i = 0; i < take && !rc; i++) {
            um_dealloc(path);
            if (!(path = um_alloc(plen + strlen(names[i])))) { rc = UM_ENOMEM; break; }
            sprintf(path, "%s/%s", dir, names[i]);
            rc = load_one(path, ds->pixels + (size_t)i * 3 * h * w, h, w);
            ds->labels[i] = -1;
        }
    }
    um_dealloc(path);
    free_names(names, n);
    if (rc) um_dataset_free(ds);
    else *out = ds;
    return rc;
}

int um_write_png(const char *path, const uint8_t *pixels, int h, int w, int channels) {
    if (h < 1 || w < 1 || (channels != 1 && channels != 3))
        return um_fail(UM_EINVAL, "write_png: need h, w >= 1 and 1 or 3 channels, got %dx%dx%d", h, w, channels);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&img, path, 0, pixels, 0, NULL)) {
        int rc = um_fail(UM_EIO, "%s: cannot write PNG (libpng: %s)", path, img.message);
        png_image_free(&img);
        return rc;
    }
    return UM_OK;
}
