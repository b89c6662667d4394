/*
 * AVX-512 direct-convolution register tiles: 14 filters x 2 vectors of output pixels (16 floats or
 * 8 doubles each), summed over every (channel, kernel tap) of a padded input band; no column
 * matrix. Contract: fastconv_kernels.h. Trusts its caller: every lane of every x read lies inside
 * the band, y is valid for the lanes and filters asked for.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* Whether the chosen lanes are the lowest ones, so y's elements line up with the lanes. */
static inline int lowest_lanes(unsigned lanes)
{
    return (lanes & (lanes + 1)) == 0;
}

/*
 * Register budget: 14 filters x 2 pixel vectors = 28 accumulators + 2 input vectors + 1
 * broadcast filter value = 31 of 32 zmm registers. Each tap loads two input vectors and
 * broadcasts 14 filter values for 28 FMAs, so the FMA ports, not the loads, set the pace; one
 * flat loop over all (channel, tap) offsets keeps loop overhead out of it. The unroll pragmas
 * keep the accumulator arrays in registers (gcc 12 otherwise spills them).
 */
void fc_sconv2d_direct_tile_14x32__avx512(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const float *x0, const float *x1, const float *w,
    float *y0, float *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0, unsigned lanes1)
{
    enum { KT = 14 };
    __m512 acc0[KT], acc1[KT];
#pragma GCC unroll 14
    for (int k = 0; k < KT; k++) {
        acc0[k] = _mm512_setzero_ps();
        acc1[k] = _mm512_setzero_ps();
    }
    for (ptrdiff_t tap = 0; tap < taps; tap++) {
        const __m512 in0 = _mm512_loadu_ps(x0 + tap_offset[tap]);
        const __m512 in1 = _mm512_loadu_ps(x1 + tap_offset[tap]);
        const float *filters = w + tap * KT;
#pragma GCC unroll 14
        for (int k = 0; k < KT; k++) {
            const __m512 wk = _mm512_set1_ps(filters[k]);
            acc0[k] = _mm512_fmadd_ps(wk, in0, acc0[k]);
            acc1[k] = _mm512_fmadd_ps(wk, in1, acc1[k]);
        }
    }
    const __mmask16 mask0 = (__mmask16)lanes0, mask1 = (__mmask16)lanes1;
    if (lowest_lanes(lanes0) && lowest_lanes(lanes1)) {
#pragma GCC unroll 14
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                float *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
                _mm512_mask_storeu_ps(out0, mask0, _mm512_add_ps(
                    _mm512_maskz_loadu_ps(mask0, out0), acc0[k]));
                _mm512_mask_storeu_ps(out1, mask1, _mm512_add_ps(
                    _mm512_maskz_loadu_ps(mask1, out1), acc1[k]));
            }
        }
        return;
    }
    /* A vector spans two output rows: its y elements are consecutive, its lanes are not. */
    const __mmask16 run0 = (__mmask16)((1u << __builtin_popcount(lanes0)) - 1);
    const __mmask16 run1 = (__mmask16)((1u << __builtin_popcount(lanes1)) - 1);
#pragma GCC unroll 14
    for (int k = 0; k < KT; k++) {
        if (k < kt) {
            float *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
            _mm512_mask_storeu_ps(out0, run0, _mm512_maskz_compress_ps(mask0, _mm512_add_ps(
                _mm512_maskz_expand_ps(mask0, _mm512_maskz_loadu_ps(run0, out0)), acc0[k])));
            _mm512_mask_storeu_ps(out1, run1, _mm512_maskz_compress_ps(mask1, _mm512_add_ps(
                _mm512_maskz_expand_ps(mask1, _mm512_maskz_loadu_ps(run1, out1)), acc1[k])));
        }
    }
}

/* Same blocking as the float tile, with 8 doubles per vector. */
void fc_dconv2d_direct_tile_14x16__avx512(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const double *x0, const double *x1, const double *w,
    double *y0, double *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0, unsigned lanes1)
{
    enum { KT = 14 };
    __m512d acc0[KT], acc1[KT];
#pragma GCC unroll 14
    for (int k = 0; k < KT; k++) {
        acc0[k] = _mm512_setzero_pd();
        acc1[k] = _mm512_setzero_pd();
    }
    for (ptrdiff_t tap = 0; tap < taps; tap++) {
        const __m512d in0 = _mm512_loadu_pd(x0 + tap_offset[tap]);
        const __m512d in1 = _mm512_loadu_pd(x1 + tap_offset[tap]);
        const double *filters = w + tap * KT;
#pragma GCC unroll 14
        for (int k = 0; k < KT; k++) {
            const __m512d wk = _mm512_set1_pd(filters[k]);
            acc0[k] = _mm512_fmadd_pd(wk, in0, acc0[k]);
            acc1[k] = _mm512_fmadd_pd(wk, in1, acc1[k]);
        }
    }
    const __mmask8 mask0 = (__mmask8)lanes0, mask1 = (__mmask8)lanes1;
    if (lowest_lanes(lanes0) && lowest_lanes(lanes1)) {
#pragma GCC unroll 14
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                double *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
                _mm512_mask_storeu_pd(out0, mask0, _mm512_add_pd(
                    _mm512_maskz_loadu_pd(mask0, out0), acc0[k]));
                _mm512_mask_storeu_pd(out1, mask1, _mm512_add_pd(
                    _mm512_maskz_loadu_pd(mask1, out1), acc1[k]));
            }
        }
        return;
    }
    const __mmask8 run0 = (__mmask8)((1u << __builtin_popcount(lanes0)) - 1);
    const __mmask8 run1 = (__mmask8)((1u << __builtin_popcount(lanes1)) - 1);
#pragma GCC unroll 14
    for (int k = 0; k < KT; k++) {
        if (k < kt) {
            double *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
            _mm512_mask_storeu_pd(out0, run0, _mm512_maskz_compress_pd(mask0, _mm512_add_pd(
                _mm512_maskz_expand_pd(mask0, _mm512_maskz_loadu_pd(run0, out0)), acc0[k])));
            _mm512_mask_storeu_pd(out1, run1, _mm512_maskz_compress_pd(mask1, _mm512_add_pd(
                _mm512_maskz_expand_pd(mask1, _mm512_maskz_loadu_pd(run1, out1)), acc1[k])));
        }
    }
}
