/*
 * Portable filter-vector backward-weights tiles (float 4 taps x 16 filters, double 4 x 8), the
 * fallback for every CPU. Compiled with the baseline flags only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_MR 4
#define FC_NR 16
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_sconv2d_backward_weight_filter_tile_4x16__generic
#include "conv2d_backward_weight_filter_tile__generic.template.c"
#undef FC_T
#undef FC_MR
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE

#define FC_T double
#define FC_MR 4
#define FC_NR 8
#define FC_BACKWARD_WEIGHT_FILTER_TILE fc_dconv2d_backward_weight_filter_tile_4x8__generic
#include "conv2d_backward_weight_filter_tile__generic.template.c"
#undef FC_T
#undef FC_MR
#undef FC_NR
#undef FC_BACKWARD_WEIGHT_FILTER_TILE
