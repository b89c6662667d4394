/*
 * AVX2+FMA direct-convolution register tiles: 6 filters x 2 vectors of output pixels (8 floats or
 * 4 doubles each), summed over every (channel, kernel tap) of a padded input band. Contract:
 * fastconv_kernels.h. Trusts its caller: every lane of every x read lies inside the band, y is
 * valid for the lanes and filters asked for. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

/* Lane masks for maskload/maskstore: lane l is on when bit l of `lanes` is set. */
static inline __m256i float_lanes(unsigned lanes)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i set = _mm256_and_si256(_mm256_set1_epi32((int)lanes), bit);
    return _mm256_cmpeq_epi32(set, bit);
}

static inline __m256i double_lanes(unsigned lanes)
{
    const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
    const __m256i set = _mm256_and_si256(_mm256_set1_epi64x((long long)lanes), bit);
    return _mm256_cmpeq_epi64(set, bit);
}

/* Whether the chosen lanes are the lowest ones, so y's elements line up with the lanes. */
static inline int lowest_lanes(unsigned lanes)
{
    return (lanes & (lanes + 1)) == 0;
}

/*
 * y[n(l)] += acc[l] for the chosen lanes l (n(l) = chosen lanes below l): the rare vectors that
 * span two output rows, done lane by lane (AVX2 has no compress instruction).
 */
#define FC_ADD_CHOSEN_LANES(T, VW, STORE, acc, lanes, y)                                        \
    do {                                                                                       \
        T lane_values[VW];                                                                     \
        STORE(lane_values, acc);                                                               \
        for (int l = 0, n = 0; l < VW; l++)                                                    \
            if ((lanes) >> l & 1u)                                                             \
                (y)[n++] += lane_values[l];                                                    \
    } while (0)

/* 6 filters x 2 vectors = 12 accumulators + 2 inputs + 1 broadcast = 15 of 16 ymm registers. */
void fc_sconv2d_direct_tile_6x16__avx2(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const float *x0, const float *x1, const float *w,
    float *y0, float *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0, unsigned lanes1)
{
    enum { KT = 6 };
    __m256 acc0[KT], acc1[KT];
#pragma GCC unroll 6
    for (int k = 0; k < KT; k++) {
        acc0[k] = _mm256_setzero_ps();
        acc1[k] = _mm256_setzero_ps();
    }
    for (ptrdiff_t tap = 0; tap < taps; tap++) {
        const __m256 in0 = _mm256_loadu_ps(x0 + tap_offset[tap]);
        const __m256 in1 = _mm256_loadu_ps(x1 + tap_offset[tap]);
        const float *filters = w + tap * KT;
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            const __m256 wk = _mm256_broadcast_ss(filters + k);
            acc0[k] = _mm256_fmadd_ps(wk, in0, acc0[k]);
            acc1[k] = _mm256_fmadd_ps(wk, in1, acc1[k]);
        }
    }
    if (!lowest_lanes(lanes0) || !lowest_lanes(lanes1)) {
        /* Unrolled, as every loop over the accumulators: with a run-time index GCC kept them
         * in memory, storing all 12 on every tap (the tile ran at a third of its speed). */
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                FC_ADD_CHOSEN_LANES(float, 8, _mm256_storeu_ps, acc0[k], lanes0, y0 + k * k_stride);
                FC_ADD_CHOSEN_LANES(float, 8, _mm256_storeu_ps, acc1[k], lanes1, y1 + k * k_stride);
            }
        }
        return;
    }
    if (lanes0 == 0xFFu && lanes1 == 0xFFu) {
        /* Whole vectors: plain loads and stores (AMD's masked stores are microcoded). */
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                float *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
                _mm256_storeu_ps(out0, _mm256_add_ps(_mm256_loadu_ps(out0), acc0[k]));
                _mm256_storeu_ps(out1, _mm256_add_ps(_mm256_loadu_ps(out1), acc1[k]));
            }
        }
        return;
    }
    const __m256i mask0 = float_lanes(lanes0), mask1 = float_lanes(lanes1);
#pragma GCC unroll 6
    for (int k = 0; k < KT; k++) {
        if (k < kt) {
            float *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
            _mm256_maskstore_ps(out0, mask0,
                                _mm256_add_ps(_mm256_maskload_ps(out0, mask0), acc0[k]));
            _mm256_maskstore_ps(out1, mask1,
                                _mm256_add_ps(_mm256_maskload_ps(out1, mask1), acc1[k]));
        }
    }
}

/* Same blocking as the float tile, with 4 doubles per vector. */
void fc_dconv2d_direct_tile_6x8__avx2(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const double *x0, const double *x1, const double *w,
    double *y0, double *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0, unsigned lanes1)
{
    enum { KT = 6 };
    __m256d acc0[KT], acc1[KT];
#pragma GCC unroll 6
    for (int k = 0; k < KT; k++) {
        acc0[k] = _mm256_setzero_pd();
        acc1[k] = _mm256_setzero_pd();
    }
    for (ptrdiff_t tap = 0; tap < taps; tap++) {
        const __m256d in0 = _mm256_loadu_pd(x0 + tap_offset[tap]);
        const __m256d in1 = _mm256_loadu_pd(x1 + tap_offset[tap]);
        const double *filters = w + tap * KT;
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            const __m256d wk = _mm256_broadcast_sd(filters + k);
            acc0[k] = _mm256_fmadd_pd(wk, in0, acc0[k]);
            acc1[k] = _mm256_fmadd_pd(wk, in1, acc1[k]);
        }
    }
    if (!lowest_lanes(lanes0) || !lowest_lanes(lanes1)) {
        /* Unrolled, as every loop over the accumulators: with a run-time index GCC kept them
         * in memory, storing all 12 on every tap (the tile ran at a third of its speed). */
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                FC_ADD_CHOSEN_LANES(double, 4, _mm256_storeu_pd, acc0[k], lanes0, y0 + k * k_stride);
                FC_ADD_CHOSEN_LANES(double, 4, _mm256_storeu_pd, acc1[k], lanes1, y1 + k * k_stride);
            }
        }
        return;
    }
    if (lanes0 == 0xFu && lanes1 == 0xFu) {
#pragma GCC unroll 6
        for (int k = 0; k < KT; k++) {
            if (k < kt) {
                double *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
                _mm256_storeu_pd(out0, _mm256_add_pd(_mm256_loadu_pd(out0), acc0[k]));
                _mm256_storeu_pd(out1, _mm256_add_pd(_mm256_loadu_pd(out1), acc1[k]));
            }
        }
        return;
    }
    const __m256i mask0 = double_lanes(lanes0), mask1 = double_lanes(lanes1);
#pragma GCC unroll 6
    for (int k = 0; k < KT; k++) {
        if (k < kt) {
            double *out0 = y0 + k * k_stride, *out1 = y1 + k * k_stride;
            _mm256_maskstore_pd(out0, mask0,
                                _mm256_add_pd(_mm256_maskload_pd(out0, mask0), acc0[k]));
            _mm256_maskstore_pd(out1, mask1,
                                _mm256_add_pd(_mm256_maskload_pd(out1, mask1), acc1[k]));
        }
    }
}
