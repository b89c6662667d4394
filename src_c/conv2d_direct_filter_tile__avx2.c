/*
 * AVX2+FMA direct-convolution tiles with filters along the vector lanes: 6 output pixels x
 * 2 vectors of filters (8 floats or 4 doubles each): 12 accumulators + 2 filter vectors + 1
 * broadcast = 15 of 16 ymm. Body: conv2d_direct_filter_tile.simd.template.c. Also the stores
 * of any ISA's tiles into y (AVX-512 uses the double one). Contract:
 * fastconv_kernels.h. Trusts its caller: every pixel read lies inside the band (or x), `c`
 * holds the whole tile. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_8x8__avx2.h"

#define FC_MR 6
/* No band-pixel prefetches: with 12 FMAs a tap, their two prefetches and the offset they read
 * crowd the loads (Zen 3). Forward time without / with them at T=1 / T=2 (tools/ab_builds.py,
 * medians of per-round ratios): vgg_conv1_2 0.88 / 0.85, vgg_conv3_2 0.95 / 0.94, vgg_conv5_2
 * 0.98 / 0.89, alexnet_conv1 0.86, dilated_3x3_d2 0.98 / 0.96, resnet_3x3_s2 1.02 / 1.01. */
#define FC_PIXEL_PREFETCH_TAPS 0

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_NR 16
#define FC_FILTER_TILE fc_sconv2d_direct_filter_tile_6x16__avx2
#include "conv2d_direct_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_FILTER_TILE

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_NR 8
#define FC_FILTER_TILE fc_dconv2d_direct_filter_tile_6x8__avx2
#include "conv2d_direct_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_FILTER_TILE

/*
 * The tiles' stores: the pixel-major block is transposed in registers, 8 x 8 floats or 4 x 4
 * doubles at a time, and each filter's pixels stored as one run. Element by element, the float
 * store took 39% of cifar_3x3's forward (3 channels: 27 taps of products per tile) at two
 * threads. Partial runs go out by store_first_floats/doubles (transpose_8x8__avx2.h).
 */
void fc_sstore_filter_tile__avx2(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                 ptrdiff_t kt, const float *bias, float *y, ptrdiff_t y_k_stride)
{
    for (ptrdiff_t i0 = 0; i0 < pixels; i0 += 8) {
        const ptrdiff_t chunk = pixels - i0 < 8 ? pixels - i0 : 8;
        for (ptrdiff_t k0 = 0; k0 < kt; k0 += 8) {
            const ptrdiff_t filters = kt - k0 < 8 ? kt - k0 : 8;
            const __m256i filter_lanes = first_float_lanes(filters);
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < chunk ? _mm256_maskload_ps(c + (i0 + i) * c_stride + k0, filter_lanes)
                                 : _mm256_setzero_ps();
            transpose_8x8(r);   /* r[k]: filter k's 8 pixels */
            for (int k = 0; k < filters; k++) {
                __m256 out = r[k];
                if (bias)
                    out = _mm256_add_ps(out, _mm256_set1_ps(bias[k0 + k]));
                store_first_floats(y + (k0 + k) * y_k_stride + i0, out, chunk);
            }
        }
    }
}

void fc_dstore_filter_tile__avx2(const double *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                 ptrdiff_t kt, const double *bias, double *y,
                                 ptrdiff_t y_k_stride)
{
    for (ptrdiff_t i0 = 0; i0 < pixels; i0 += 4) {
        const ptrdiff_t chunk = pixels - i0 < 4 ? pixels - i0 : 4;
        for (ptrdiff_t k0 = 0; k0 < kt; k0 += 4) {
            const ptrdiff_t filters = kt - k0 < 4 ? kt - k0 : 4;
            const __m256i filter_lanes = first_double_lanes(filters);
            __m256d r[4];
            for (int i = 0; i < 4; i++)
                r[i] = i < chunk ? _mm256_maskload_pd(c + (i0 + i) * c_stride + k0, filter_lanes)
                                 : _mm256_setzero_pd();
            transpose_4x4(r);
            for (int k = 0; k < filters; k++) {
                __m256d out = r[k];
                if (bias)
                    out = _mm256_add_pd(out, _mm256_set1_pd(bias[k0 + k]));
                store_first_doubles(y + (k0 + k) * y_k_stride + i0, out, chunk);
            }
        }
    }
}
