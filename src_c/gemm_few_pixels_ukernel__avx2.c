/*
 * AVX2+FMA few-pixel GEMM micro-kernels (contract: fastconv_kernels.h): 16 filter rows (8 for
 * doubles) read where they lie, turned around 8 taps (4) at a time by in-register transposes
 * so the vector lanes run along the filters, against 1 to 4 broadcast pixels.
 *
 * Why: an FC layer at batch 1 or 2 (VGG's fc6 on one image: 411 MB of filters, one pixel) is a
 * stream of filters with two flops per element. The filter-streaming kernel keeps its lanes
 * along the pixels, so with one pixel it runs one FMA chain per filter row, 4 chains in all:
 * bound by the FMA latency at about a cycle per element, half the memory's pace. Here each
 * vector of 8 filters has its own chain (2 per pixel), at a quarter cycle per element, and the
 * time is the filters' stream from memory.
 *
 * Each sum starts from zero and takes its taps in increasing order, one FMA each, and is then
 * added to c: the products and sums of the other GEMM micro-kernels, so a batch's bits do not
 * depend on which kernel ran. Taps past kc are skipped, never multiplied as zeros (0 * inf
 * would make a NaN, and -0.0 + 0.0 a +0.0). Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_8x8__avx2.h"

/* r[0..7] := the first `taps` taps of rows first .. first+7 (zero rows past `rows`),
 * transposed: r[j] holds tap j of the 8 rows. */
static inline __attribute__((always_inline)) void load_float_taps(
    const float *w, ptrdiff_t w_row_stride, ptrdiff_t first, ptrdiff_t rows, ptrdiff_t taps,
    __m256 r[8])
{
    const __m256i tap_lanes = float_lanes(taps);
    for (int i = 0; i < 8; i++) {
        const float *row = w + (first + i) * w_row_stride;
        if (first + i >= rows)
            r[i] = _mm256_setzero_ps();
        else if (taps == 8)
            r[i] = _mm256_loadu_ps(row);
        else
            r[i] = _mm256_maskload_ps(row, tap_lanes);
    }
    transpose_8x8(r);
}

/* acc[h][q] += tap p0 + j of rows 8h .. 8h+7 times pixel q, for j < taps. */
static inline __attribute__((always_inline)) void sgemm_few_pixels_step(
    int NQ, const float *w, ptrdiff_t w_row_stride, ptrdiff_t rows, const float *b,
    ptrdiff_t b_row_stride, ptrdiff_t taps, __m256 acc[2][4])
{
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256 r[8];
        load_float_taps(w, w_row_stride, 8 * h, rows, taps, r);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            if (j >= taps)
                break;
            const float *pixels = b + j * b_row_stride;
#pragma GCC unroll 4
            for (int q = 0; q < NQ; q++)
                acc[h][q] = _mm256_fmadd_ps(r[j], _mm256_broadcast_ss(pixels + q), acc[h][q]);
        }
    }
}

/* NQ pixels, a constant once inlined, as are rows == 16 for whole blocks and taps == 8 in the
 * main loop: the accumulators stay in registers and the row and tap tests fold away. */
static inline __attribute__((always_inline)) void sgemm_few_pixels(
    int NQ, ptrdiff_t kc, const float *restrict w, ptrdiff_t w_row_stride, ptrdiff_t rows,
    const float *restrict b, ptrdiff_t b_row_stride, float *restrict c, ptrdiff_t ldc)
{
    __m256 acc[2][4];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++)
            acc[h][q] = _mm256_setzero_ps();
    ptrdiff_t p0 = 0;
    for (; p0 + 8 <= kc; p0 += 8)
        sgemm_few_pixels_step(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride,
                              b_row_stride, 8, acc);
    if (p0 < kc)
        sgemm_few_pixels_step(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride,
                              b_row_stride, kc - p0, acc);
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < NQ; q++) {
            float sums[8];
            _mm256_storeu_ps(sums, acc[h][q]);
            for (int i = 0; i < 8 && 8 * h + i < rows; i++)
                c[(8 * h + i) * ldc + q] = c[(8 * h + i) * ldc + q] + sums[i];
        }
}

void fc_sgemm_few_pixels_ukernel_16__avx2(ptrdiff_t kc, const float *restrict w,
                                          ptrdiff_t w_row_stride, ptrdiff_t rows,
                                          const float *restrict b, ptrdiff_t b_row_stride,
                                          ptrdiff_t pixels, float *restrict c, ptrdiff_t ldc)
{
#define FC_FEW_PIXELS(NQ)                                                                     \
    (rows == 16 ? sgemm_few_pixels(NQ, kc, w, w_row_stride, 16, b, b_row_stride, c, ldc)         \
                : sgemm_few_pixels(NQ, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc))
    switch (pixels) {
    case 1: FC_FEW_PIXELS(1); break;
    case 2: FC_FEW_PIXELS(2); break;
    case 3: FC_FEW_PIXELS(3); break;
    default: FC_FEW_PIXELS(4); break;
    }
#undef FC_FEW_PIXELS
}

static inline __attribute__((always_inline)) void load_double_taps(
    const double *w, ptrdiff_t w_row_stride, ptrdiff_t first, ptrdiff_t rows, ptrdiff_t taps,
    __m256d r[4])
{
    const __m256i tap_lanes = double_lanes(taps);
    for (int i = 0; i < 4; i++) {
        const double *row = w + (first + i) * w_row_stride;
        if (first + i >= rows)
            r[i] = _mm256_setzero_pd();
        else if (taps == 4)
            r[i] = _mm256_loadu_pd(row);
        else
            r[i] = _mm256_maskload_pd(row, tap_lanes);
    }
    transpose_4x4(r);
}

static inline __attribute__((always_inline)) void dgemm_few_pixels_step(
    int NQ, const double *w, ptrdiff_t w_row_stride, ptrdiff_t rows, const double *b,
    ptrdiff_t b_row_stride, ptrdiff_t taps, __m256d acc[2][4])
{
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256d r[4];
        load_double_taps(w, w_row_stride, 4 * h, rows, taps, r);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            if (j >= taps)
                break;
            const double *pixels = b + j * b_row_stride;
#pragma GCC unroll 4
            for (int q = 0; q < NQ; q++)
                acc[h][q] = _mm256_fmadd_pd(r[j], _mm256_broadcast_sd(pixels + q), acc[h][q]);
        }
    }
}

static inline __attribute__((always_inline)) void dgemm_few_pixels(
    int NQ, ptrdiff_t kc, const double *restrict w, ptrdiff_t w_row_stride, ptrdiff_t rows,
    const double *restrict b, ptrdiff_t b_row_stride, double *restrict c, ptrdiff_t ldc)
{
    __m256d acc[2][4];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++)
            acc[h][q] = _mm256_setzero_pd();
    ptrdiff_t p0 = 0;
    for (; p0 + 4 <= kc; p0 += 4)
        dgemm_few_pixels_step(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride,
                              b_row_stride, 4, acc);
    if (p0 < kc)
        dgemm_few_pixels_step(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride,
                              b_row_stride, kc - p0, acc);
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < NQ; q++) {
            double sums[4];
            _mm256_storeu_pd(sums, acc[h][q]);
            for (int i = 0; i < 4 && 4 * h + i < rows; i++)
                c[(4 * h + i) * ldc + q] = c[(4 * h + i) * ldc + q] + sums[i];
        }
}

void fc_dgemm_few_pixels_ukernel_8__avx2(ptrdiff_t kc, const double *restrict w,
                                         ptrdiff_t w_row_stride, ptrdiff_t rows,
                                         const double *restrict b, ptrdiff_t b_row_stride,
                                         ptrdiff_t pixels, double *restrict c, ptrdiff_t ldc)
{
#define FC_FEW_PIXELS(NQ)                                                                     \
    (rows == 8 ? dgemm_few_pixels(NQ, kc, w, w_row_stride, 8, b, b_row_stride, c, ldc)           \
               : dgemm_few_pixels(NQ, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc))
    switch (pixels) {
    case 1: FC_FEW_PIXELS(1); break;
    case 2: FC_FEW_PIXELS(2); break;
    case 3: FC_FEW_PIXELS(3); break;
    default: FC_FEW_PIXELS(4); break;
    }
#undef FC_FEW_PIXELS
}
