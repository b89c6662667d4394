/*
 * AVX2 packing of rows into a k-major GEMM panel: 8x8 floats (4x4 doubles) are loaded,
 * transposed in registers and stored as panel rows, instead of one scalar store per element.
 * Contract: fastconv_kernels.h. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_8x8__avx2.h"

void fc_spack_kmajor__avx2(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, float *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 8) {
        const ptrdiff_t width = panel - i0 < 8 ? panel - i0 : 8;   /* panel lanes stored */
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 8 ? rows - i0 : 8);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 8) {
            const ptrdiff_t columns = kc - p0 < 8 ? kc - p0 : 8;
            const __m256i column_lanes = first_float_lanes(columns);
            const float *block = src + i0 * row_stride + p0;
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                if (i >= present)
                    r[i] = _mm256_setzero_ps();
                else if (columns == 8)
                    r[i] = _mm256_loadu_ps(block + i * row_stride);
                else
                    r[i] = _mm256_maskload_ps(block + i * row_stride, column_lanes);
            }
            transpose_8x8(r);
            for (int q = 0; q < columns; q++)
                store_first_floats(dst + (p0 + q) * panel + i0, r[q], width);
        }
    }
}

void fc_dpack_kmajor__avx2(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, double *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 4) {
        const ptrdiff_t width = panel - i0 < 4 ? panel - i0 : 4;
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 4 ? rows - i0 : 4);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 4) {
            const ptrdiff_t columns = kc - p0 < 4 ? kc - p0 : 4;
            const __m256i column_lanes = first_double_lanes(columns);
            const double *block = src + i0 * row_stride + p0;
            __m256d r[4];
            for (int i = 0; i < 4; i++) {
                if (i >= present)
                    r[i] = _mm256_setzero_pd();
                else if (columns == 4)
                    r[i] = _mm256_loadu_pd(block + i * row_stride);
                else
                    r[i] = _mm256_maskload_pd(block + i * row_stride, column_lanes);
            }
            transpose_4x4(r);
            for (int q = 0; q < columns; q++)
                store_first_doubles(dst + (p0 + q) * panel + i0, r[q], width);
        }
    }
}
