/*
 * AVX-512 backward-weights register tiles: 4 filters x 6 kernel taps of dw, each a dot product of
 * a filter's output-gradient rows with a tap's input rows (read from the padded, phase-split
 * input band), 16 floats or 8 doubles at a time. Contract: fastconv_kernels.h. Trusts its
 * caller: rows of dy and of the band are valid for WO elements past each row start.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/*
 * 4 x 6 = 24 accumulators + 4 dy vectors + 1 input vector = 29 of 32 zmm registers; per vector
 * step 4 + 6 loads feed 24 FMAs. The last, partial vector of a row is loaded with its lanes
 * masked to zero in both operands, so input values no output pixel reads never reach dw.
 */
void fc_sconv2d_backward_weight_tile_4x6__avx512(
    ptrdiff_t rows, ptrdiff_t WO, const float *dy, ptrdiff_t dy_k_stride, ptrdiff_t dy_row_stride,
    const float *x, ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset, float *dw,
    ptrdiff_t dw_k_stride, ptrdiff_t kt, ptrdiff_t tt)
{
    enum { KT = 4, TT = 6, VW = 16 };
    __m512 acc[KT][TT];
    ptrdiff_t offset[TT];
#pragma GCC unroll 6
    for (int t = 0; t < TT; t++)
        offset[t] = tap_offset[t < tt ? t : 0];
#pragma GCC unroll 4
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 6
        for (int t = 0; t < TT; t++)
            acc[k][t] = _mm512_setzero_ps();
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *dy_row = dy + r * dy_row_stride, *x_row = x + r * x_row_stride;
        for (ptrdiff_t wo = 0; wo < WO; wo += VW) {
            const __mmask16 lanes = WO - wo >= VW ? (__mmask16)0xFFFF
                                                  : (__mmask16)((1u << (WO - wo)) - 1);
            __m512 grad[KT];
#pragma GCC unroll 4
            for (int k = 0; k < KT; k++)
                grad[k] = k < kt ? _mm512_maskz_loadu_ps(lanes, dy_row + k * dy_k_stride + wo)
                                 : _mm512_setzero_ps();
#pragma GCC unroll 6
            for (int t = 0; t < TT; t++) {
                const __m512 in = _mm512_maskz_loadu_ps(lanes, x_row + offset[t] + wo);
#pragma GCC unroll 4
                for (int k = 0; k < KT; k++)
                    acc[k][t] = _mm512_fmadd_ps(grad[k], in, acc[k][t]);
            }
        }
    }
    for (int k = 0; k < KT && k < kt; k++)
        for (int t = 0; t < TT && t < tt; t++)
            dw[k * dw_k_stride + t] += _mm512_reduce_add_ps(acc[k][t]);
}

/* Same blocking as the float tile, with 8 doubles per vector. */
void fc_dconv2d_backward_weight_tile_4x6__avx512(
    ptrdiff_t rows, ptrdiff_t WO, const double *dy, ptrdiff_t dy_k_stride,
    ptrdiff_t dy_row_stride, const double *x, ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset,
    double *dw, ptrdiff_t dw_k_stride, ptrdiff_t kt, ptrdiff_t tt)
{
    enum { KT = 4, TT = 6, VW = 8 };
    __m512d acc[KT][TT];
    ptrdiff_t offset[TT];
#pragma GCC unroll 6
    for (int t = 0; t < TT; t++)
        offset[t] = tap_offset[t < tt ? t : 0];
#pragma GCC unroll 4
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 6
        for (int t = 0; t < TT; t++)
            acc[k][t] = _mm512_setzero_pd();
    for (ptrdiff_t r = 0; r < rows; r++) {
        const double *dy_row = dy + r * dy_row_stride, *x_row = x + r * x_row_stride;
        for (ptrdiff_t wo = 0; wo < WO; wo += VW) {
            const __mmask8 lanes = WO - wo >= VW ? (__mmask8)0xFF
                                                 : (__mmask8)((1u << (WO - wo)) - 1);
            __m512d grad[KT];
#pragma GCC unroll 4
            for (int k = 0; k < KT; k++)
                grad[k] = k < kt ? _mm512_maskz_loadu_pd(lanes, dy_row + k * dy_k_stride + wo)
                                 : _mm512_setzero_pd();
#pragma GCC unroll 6
            for (int t = 0; t < TT; t++) {
                const __m512d in = _mm512_maskz_loadu_pd(lanes, x_row + offset[t] + wo);
#pragma GCC unroll 4
                for (int k = 0; k < KT; k++)
                    acc[k][t] = _mm512_fmadd_pd(grad[k], in, acc[k][t]);
            }
        }
    }
    for (int k = 0; k < KT && k < kt; k++)
        for (int t = 0; t < TT && t < tt; t++)
            dw[k * dw_k_stride + t] += _mm512_reduce_add_pd(acc[k][t]);
}
