/* Image data sets held in memory: uint8 NCHW pixels and int64 labels (0-based; -1 for an
 * unlabelled image folder), read from MNIST-style IDX, CIFAR binary, SVHN .mat and PNG
 * folders, handed out as float32 batches in [0,1] with the authors' augmentation
 * (optional horizontal flip, then a random crop with zero padding). */
#ifndef UM_DATA_H
#define UM_DATA_H
#include <stdint.h>
#include "rng.h"
#include "tensor.h"

typedef struct um_dataset {
    char name[96];        /* "mnist train", for messages and summaries */
    int64_t n;            /* number of images */
    int c, h, w;          /* image shape */
    int num_classes;      /* 0: unlabelled (labels are -1) */
    uint8_t *pixels;      /* n*c*h*w bytes, NCHW, counted by um_alloc */
    int64_t *labels;      /* n labels */
} um_dataset;

/* A new data set with uninitialised pixels and labels. */
int um_dataset_new(um_dataset **out, const char *name, int64_t n, int c, int h, int w, int num_classes);
void um_dataset_free(um_dataset *ds);  /* NULL is fine */
/* "mnist train: 60000 images 1x28x28, 10 classes" into buf. */
const char *um_dataset_describe(const um_dataset *ds, char *buf, size_t n);
/* Keep only the first n images (n >= ds->n keeps all), releasing the rest's memory. */
int um_dataset_take(um_dataset *ds, int64_t n);
/* counts[k] = number of images of class k, k < num_classes. */
void um_dataset_class_counts(const um_dataset *ds, int64_t *counts);

/* Augmentation, applied per image in this order, as the authors' torchvision pipeline:
 * horizontal flip with probability 1/2 (flip), then a random crop of the original size
 * from the image padded by crop_pad zero pixels on each side (crop_pad = 0: none).
 * Each augmented image draws 1 (flip) + 2 (crop) scalars from the generator, in index order. */
typedef struct um_augment {
    int flip;
    int crop_pad;
} um_augment;

/* Fill x (n x C x H x W float32, contiguous, CPU) with pixels / 255 of the images at
 * indices[0..n) (0-based) and y (n int64, contiguous, CPU; may be NULL) with their labels
 * plus label_base (1 for Lua's 1-based classes). aug may be NULL; g is needed when aug
 * asks for randomness. */
int um_dataset_batch(const um_dataset *ds, const int64_t *indices, int64_t n, um_tensor *x,
                     um_tensor *y, int64_t label_base, const um_augment *aug, um_generator *g);

/* ---- readers: UM_EIO when a file cannot be opened, UM_EFORMAT when its content is not
 * what was expected (the message names the file, what was expected and what was found). */

/* MNIST-style IDX pair (gzip or plain). transpose: EMNIST stores each image transposed.
 * label_min: the smallest label in the file (EMNIST letters: 1), subtracted on reading;
 * labels must lie in label_min .. label_min + num_classes - 1. */
int um_read_idx(um_dataset **out, const char *images_path, const char *labels_path,
                const char *name, int transpose, int label_min, int num_classes);

/* CIFAR binary batches (gzip or plain), concatenated in order. label_bytes: 1 for CIFAR-10
 * (label, pixels), 2 for CIFAR-100 (coarse, fine, pixels; the fine label is kept).
 * records[i] is the expected number of records of file i; 0 infers it from the file size
 * (plain file) or the gzip trailer. records may be NULL (all inferred). */
int um_read_cifar(um_dataset **out, int nfiles, const char *const *paths, const int64_t *records,
                  int label_bytes, int num_classes, const char *name);

/* SVHN cropped digits .mat (MATLAB v5 or v7.3, via libmatio): X is 32x32x3xN uint8,
 * y is Nx1 with 10 standing for the digit 0. */
int um_read_svhn(um_dataset **out, const char *path, const char *name);

/* Every *.png in dir (sorted by name; the first `limit` when limit > 0), converted to RGB
 * (gray replicated, alpha composited on black) and resized to h x w with um_resize_u8. */
int um_read_png_folder(um_dataset **out, const char *dir, int h, int w, int64_t limit, const char *name);

/* Write an 8-bit PNG of h x w pixels, channels 1 (gray) or 3 (RGB), interleaved (HWC). */
int um_write_png(const char *path, const uint8_t *pixels, int h, int w, int channels);

/* ---- resizing ---- */

/* Resize one image plane (float, sh x sw -> dh x dw) with PIL's bilinear filter: a
 * separable triangle filter over half-pixel centres whose support widens by the scale
 * factor when shrinking (antialiasing, as torchvision's Resize on PIL images); when
 * enlarging or keeping the size this is plain bilinear interpolation (same size: identity). */
int um_resize_plane(const float *src, int sh, int sw, float *dst, int dh, int dw);
/* Resize a CHW uint8 image with um_resize_plane per channel, rounding to nearest. */
int um_resize_u8(const uint8_t *src, int c, int sh, int sw, uint8_t *dst, int dh, int dw);

/* grayCIFAR-style copy: each image becomes the mean of its channels, resized to h x w
 * (mean first, then um_resize_plane, one rounding at the end); labels are kept. */
int um_dataset_gray_resize(um_dataset **out, const um_dataset *src, int h, int w, const char *name);

#endif
