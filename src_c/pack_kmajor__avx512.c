/*
 * AVX-512 packing of float rows into a k-major GEMM panel: 16 rows x 16 columns at a time are
 * loaded, transposed in registers and stored as 16 panel rows, instead of one scalar store per
 * element (packing took a third of backward-weights' time). Contract: fastconv_kernels.h.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* r[q] := column q of the 16 x 16 block whose rows are r[0..15] on entry. */
static inline void transpose_16x16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* Per 128-bit lane L, r[4g + k] holds column 4L + k of rows 4g .. 4g+3. */
    for (int g = 0; g < 4; g++) {
        r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    /* t[k] (k < 4): columns k and 8+k of rows 0-7; t[4+k]: columns 4+k and 12+k of rows 0-7;
     * t[8..15] likewise for rows 8-15. */
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
    }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
    }
}

void fc_spack_kmajor__avx512(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                             ptrdiff_t kc, ptrdiff_t panel, float *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 16) {
        const ptrdiff_t width = panel - i0 < 16 ? panel - i0 : 16;   /* panel lanes stored */
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 16 ? rows - i0 : 16);
        const __mmask16 store_mask = (__mmask16)((1u << width) - 1);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 16) {
            const ptrdiff_t columns = kc - p0 < 16 ? kc - p0 : 16;
            const __mmask16 load_mask = (__mmask16)((1u << columns) - 1);
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = j < present
                           ? _mm512_maskz_loadu_ps(load_mask, src + (i0 + j) * row_stride + p0)
                           : _mm512_setzero_ps();
            transpose_16x16(r);
            for (int q = 0; q < columns; q++)
                _mm512_mask_storeu_ps(dst + (p0 + q) * panel + i0, store_mask, r[q]);
        }
    }
}
