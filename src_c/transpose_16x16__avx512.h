/*
 * In-register transpose of a 16 x 16 float block, and a masked load of one, for the AVX-512 files
 * that need them (packing GEMM panels, storing the filter-vector tiles). Include only from files
 * built with -mavx512f.
 */
#ifndef FASTCONV_TRANSPOSE_16X16_AVX512_H
#define FASTCONV_TRANSPOSE_16X16_AVX512_H

#include <immintrin.h>
#include <stddef.h>

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

/* r[q] := column q of the 16 x 16 block whose first `rows` rows (<= 16) are the `columns` lanes
 * at src, src + stride, ...; the lanes outside `columns` and the rows past `rows` are zero and
 * never read. */
static inline void load_transposed_16x16(const float *src, ptrdiff_t stride, ptrdiff_t rows,
                                         __mmask16 columns, __m512 r[16])
{
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(columns, src + i * stride) : _mm512_setzero_ps();
    transpose_16x16(r);
}

#endif /* FASTCONV_TRANSPOSE_16X16_AVX512_H */
