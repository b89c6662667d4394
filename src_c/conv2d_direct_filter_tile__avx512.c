/*
 * AVX-512 direct-convolution tiles with filters along the vector lanes: 14 output pixels x
 * 2 vectors of filters (16 floats or 8 doubles each), summed over (channel, kernel tap) offsets of
 * a padded input band (body: conv2d_direct_filter_tile.simd.template.c), and the float tile's
 * store into y. Contract: fastconv_kernels.h. Trusts its caller: every pixel read lies inside
 * the band (or x), `c` holds the whole tile. Built with -mavx512f -mavx512vl -mavx512bw
 * -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_16x16__avx512.h"

#define FC_MR 14

#define FC_SINGLE 1
#include "simd_vector__avx512.h"
#define FC_NR 32
#define FC_FILTER_TILE fc_sconv2d_direct_filter_tile_14x32__avx512
#include "conv2d_direct_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_FILTER_TILE

#define FC_SINGLE 0
#include "simd_vector__avx512.h"
#define FC_NR 16
#define FC_FILTER_TILE fc_dconv2d_direct_filter_tile_14x16__avx512
#include "conv2d_direct_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_FILTER_TILE

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
            load_transposed_16x16(c + i0 * c_stride + k0, c_stride, chunk, filter_lanes, r);
            for (int k = 0; k < filters; k++) {
                __m512 out = r[k];
                if (bias)
                    out = _mm512_add_ps(out, _mm512_set1_ps(bias[k0 + k]));
                _mm512_mask_storeu_ps(y + (k0 + k) * y_k_stride + i0, pixel_lanes, out);
            }
        }
    }
}
