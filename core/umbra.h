/* The umbra core in one include. */
#ifndef UMBRA_H
#define UMBRA_H
#define UMBRA_VERSION "0.1.0"
#include "error.h"
#include "alloc.h"
#include "rng.h"
#include "tensor.h"
#include "ops.h"
#include "backend.h"
#endif
