/*
 * AVX2+FMA backward-weights tiles with filters along the vector lanes: 6 kernel taps x 2 vectors
 * of filters (8 floats or 4 doubles each): 12 accumulators + 2 gradient vectors + 1 broadcast =
 * 15 of 16 ymm. Body: conv2d_backward_weight_filter_tile.simd.template.c. Contract:
 * fastconv_kernels.h. Trusts its caller: every tap's reads lie inside the band (or x).
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_MR 6

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_NR 16
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_sconv2d_backward_weight_filter_tile_6x16__avx2
#include "conv2d_backward_weight_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_NR 8
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_dconv2d_backward_weight_filter_tile_6x8__avx2
#include "conv2d_backward_weight_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE
