/*
 * AVX-512 direct-convolution tiles with filters along the vector lanes: 14 output pixels x
 * 2 vectors of filters (16 floats or 8 doubles each), summed over (channel, kernel tap) offsets of
 * a padded input band. Contract: fastconv_kernels.h. Trusts its caller: every pixel read lies
 * inside the band, `c` holds the whole tile. Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_16x16__avx512.h"

/*
 * Register budget as in the GEMM micro-kernel: 14 pixels x 2 filter vectors = 28 accumulators +
 * 2 filter vectors + 1 broadcast pixel. Per tap: two vector loads of packed filters, 14 pixel
 * broadcasts from one or two cache lines of the band, 28 FMAs. Unlike the pixel-vector tiles, no
 * lane is idle when an output row is not a multiple of 16 pixels or a layer has 64 filters.
 */
void fc_sconv2d_direct_filter_tile_14x32__avx512(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                                 const float *x, const float *w, float *c,
                                                 int accumulate)
{
    enum { MR = 14, NR = 32 };
    __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        const __m512 w0 = _mm512_loadu_ps(w + t * NR);
        const __m512 w1 = _mm512_loadu_ps(w + t * NR + 16);
        const float *pixels = x + tap_offset[t];
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 xi = _mm512_set1_ps(pixels[i]);
            acc0[i] = _mm512_fmadd_ps(xi, w0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(xi, w1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * NR;
        if (accumulate) {
            acc0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), acc0[i]);
            acc1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc1[i]);
        }
        _mm512_storeu_ps(ci, acc0[i]);
        _mm512_storeu_ps(ci + 16, acc1[i]);
    }
}

/* Same blocking with 8 doubles per vector. */
void fc_dconv2d_direct_filter_tile_14x16__avx512(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                                 const double *x, const double *w, double *c,
                                                 int accumulate)
{
    enum { MR = 14, NR = 16 };
    __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_setzero_pd();
        acc1[i] = _mm512_setzero_pd();
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        const __m512d w0 = _mm512_loadu_pd(w + t * NR);
        const __m512d w1 = _mm512_loadu_pd(w + t * NR + 8);
        const double *pixels = x + tap_offset[t];
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512d xi = _mm512_set1_pd(pixels[i]);
            acc0[i] = _mm512_fmadd_pd(xi, w0, acc0[i]);
            acc1[i] = _mm512_fmadd_pd(xi, w1, acc1[i]);
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * NR;
        if (accumulate) {
            acc0[i] = _mm512_add_pd(_mm512_loadu_pd(ci), acc0[i]);
            acc1[i] = _mm512_add_pd(_mm512_loadu_pd(ci + 8), acc1[i]);
        }
        _mm512_storeu_pd(ci, acc0[i]);
        _mm512_storeu_pd(ci + 8, acc1[i]);
    }
}

/*
 * The float tile's store: 16 pixels x 16 filters at a time, the pixel-major block is transposed
 * in registers and each filter's pixels stored as one masked vector (element by element, storing
 * a 14 x 32 tile cost as much as 250 taps of products: a quarter of a 1x1 layer's time).
 */
void fc_sstore_filter_tile__avx512(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                   ptrdiff_t kt, const float *bias, float *y,
                                   ptrdiff_t y_k_stride)
{
    for (ptrdiff_t i0 = 0; i0 < pixels; i0 += 16) {
        const ptrdiff_t chunk = pixels - i0 < 16 ? pixels - i0 : 16;
        const __mmask16 pixel_lanes = (__mmask16)((1u << chunk) - 1);
        for (ptrdiff_t k0 = 0; k0 < kt; k0 += 16) {
            const ptrdiff_t filters = kt - k0 < 16 ? kt - k0 : 16;
            const __mmask16 filter_lanes = (__mmask16)((1u << filters) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < chunk
                           ? _mm512_maskz_loadu_ps(filter_lanes, c + (i0 + i) * c_stride + k0)
                           : _mm512_setzero_ps();
            transpose_16x16(r);
            for (int k = 0; k < filters; k++) {
                __m512 out = r[k];
                if (bias)
                    out = _mm512_add_ps(out, _mm512_set1_ps(bias[k0 + k]));
                _mm512_mask_storeu_ps(y + (k0 + k) * y_k_stride + i0, pixel_lanes, out);
            }
        }
    }
}
