/*
 * AVX-512 backward-weights register tiles: 4 filters x 6 kernel taps of dw, each a dot product of
 * a filter's output-gradient rows with a tap's input rows (read from the padded, phase-split
 * input band), 16 floats or 8 doubles at a time (body:
 * conv2d_backward_weight_tile.simd.template.c). Contract: fastconv_kernels.h. Trusts its caller:
 * rows of dy and of the band are valid for WO elements past each row start.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_KT 4
#define FC_TT 6

#define FC_SINGLE 1
#include "simd_vector__avx512.h"
#define FC_BACKWARD_WEIGHT_TILE fc_sconv2d_backward_weight_tile_4x6__avx512
#include "conv2d_backward_weight_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_BACKWARD_WEIGHT_TILE

#define FC_SINGLE 0
#include "simd_vector__avx512.h"
#define FC_BACKWARD_WEIGHT_TILE fc_dconv2d_backward_weight_tile_4x6__avx512
#include "conv2d_backward_weight_tile.simd.template.c"
#undef FC_SINGLE
#undef FC_BACKWARD_WEIGHT_TILE
