/* Helpers shared by the metric files (metrics.c, detection.c): checking a score vector and
 * sorting the scores of two sets together, each remembering which set it came from. */
#ifndef UM_SCORES_H
#define UM_SCORES_H
#include "tensor.h"

typedef struct { float s; int positive; } um_scored;

static inline float um_score_at(const um_tensor *t, int64_t i) { return um_f32(t)[i * t->stride[0]]; }

/* A host float32 vector with at least one element and no NaN; errors name fn and what. */
int um_check_scores(const um_tensor *t, const char *fn, const char *what);
/* All scores of pos (positive = 1) and neg (0), sorted ascending, in a new buffer (um_dealloc). */
int um_sorted_scores(const um_tensor *pos, const um_tensor *neg, um_scored **out);

#endif
