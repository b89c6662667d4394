/*
 * AVX2+FMA backward-weights register tiles: 2 filters x 4 kernel taps of dw, 8 floats or 4 doubles
 * at a time (body: conv2d_backward_weight_tile.simd.template.c). Contract: fastconv_kernels.h.
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_KT 2
#define FC_TT 4

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_BACKWARD_WEIGHT_TILE fc_sconv2d_backward_weight_tile_2x4__avx2
#include "conv2d_backward_weight_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_BACKWARD_WEIGHT_TILE

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_BACKWARD_WEIGHT_TILE fc_dconv2d_backward_weight_tile_2x4__avx2
#include "conv2d_backward_weight_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_BACKWARD_WEIGHT_TILE
