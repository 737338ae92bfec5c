/*
 * quantize.h — internal: the quantizers of quantize.c, reached through
 * gmrt_quantize_row (dtype.c), which checks the type and the row length.
 */
#ifndef GMRT_QUANTIZE_H
#define GMRT_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

/* Quantizes n floats (a multiple of the type's block size) to Q4_1, Q5_1,
 * Q4_K, Q5_K or Q6_K blocks at dst; false for any other type. */
bool gmrt_quantize_row_ext(int32_t dtype, const float *src, uint8_t *dst, int64_t n);

#endif /* GMRT_QUANTIZE_H */
