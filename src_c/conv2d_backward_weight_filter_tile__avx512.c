/*
 * AVX-512 backward-weights tiles with filters along the vector lanes: 14 kernel taps x 2 vectors
 * of filters (16 floats or 8 doubles each): the forward filter tile's register budget with the
 * roles of taps and pixels swapped. Body: conv2d_backward_weight_filter_tile.simd.template.c.
 * Contract: fastconv_kernels.h. Trusts its caller: every tap's reads lie inside the band (or x).
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_MR 14

#define FC_SINGLE 1
#include "simd_vector__avx512.h"
#define FC_NR 32
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_sconv2d_backward_weight_filter_tile_14x32__avx512
#include "conv2d_backward_weight_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE

#define FC_SINGLE 0
#include "simd_vector__avx512.h"
#define FC_NR 16
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_dconv2d_backward_weight_filter_tile_14x16__avx512
#include "conv2d_backward_weight_filter_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE
