/*
 * AVX2 packing of rows into a k-major GEMM panel: 8x8 floats (4x4 doubles) are loaded,
 * transposed in registers and stored as panel rows, instead of one scalar store per element.
 * The FC layer packs 411 MB of filters per call through this, so the transpose must keep up
 * with memory (see `conv2d_im2col_over_batch`). Contract: fastconv_kernels.h.
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* Lanes below `count` set: the mask of maskload/maskstore for a partial vector. */
static inline __m256i first_lanes_32(ptrdiff_t count)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i first_lanes_64(ptrdiff_t count)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* r[i][j] -> r[j][i] for an 8x8 block of floats. */
static inline void transpose_8x8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* r[i][j] -> r[j][i] for a 4x4 block of doubles. */
static inline void transpose_4x4(__m256d r[4])
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

void fc_spack_kmajor__avx2(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, float *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 8) {
        const ptrdiff_t width = panel - i0 < 8 ? panel - i0 : 8;   /* panel lanes stored */
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 8 ? rows - i0 : 8);
        const __m256i store_mask = first_lanes_32(width);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 8) {
            const ptrdiff_t columns = kc - p0 < 8 ? kc - p0 : 8;
            const __m256i load_mask = first_lanes_32(columns);
            const float *block = src + i0 * row_stride + p0;
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                if (i >= present)
                    r[i] = _mm256_setzero_ps();
                else if (columns == 8)
                    r[i] = _mm256_loadu_ps(block + i * row_stride);
                else
                    r[i] = _mm256_maskload_ps(block + i * row_stride, load_mask);
            }
            transpose_8x8(r);
            float *out = dst + p0 * panel + i0;
            for (int q = 0; q < columns; q++) {
                if (width == 8)
                    _mm256_storeu_ps(out + q * panel, r[q]);
                else
                    _mm256_maskstore_ps(out + q * panel, store_mask, r[q]);
            }
        }
    }
}

void fc_dpack_kmajor__avx2(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, double *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 4) {
        const ptrdiff_t width = panel - i0 < 4 ? panel - i0 : 4;
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 4 ? rows - i0 : 4);
        const __m256i store_mask = first_lanes_64(width);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 4) {
            const ptrdiff_t columns = kc - p0 < 4 ? kc - p0 : 4;
            const __m256i load_mask = first_lanes_64(columns);
            const double *block = src + i0 * row_stride + p0;
            __m256d r[4];
            for (int i = 0; i < 4; i++) {
                if (i >= present)
                    r[i] = _mm256_setzero_pd();
                else if (columns == 4)
                    r[i] = _mm256_loadu_pd(block + i * row_stride);
                else
                    r[i] = _mm256_maskload_pd(block + i * row_stride, load_mask);
            }
            transpose_4x4(r);
            double *out = dst + p0 * panel + i0;
            for (int q = 0; q < columns; q++) {
                if (width == 4)
                    _mm256_storeu_pd(out + q * panel, r[q]);
                else
                    _mm256_maskstore_pd(out + q * panel, store_mask, r[q]);
            }
        }
    }
}
