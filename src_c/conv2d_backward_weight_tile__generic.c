/*
 * Backward-weights register tiles (float and double, 2 filters x 4 taps) compiled with the generic
 * flags; the body is conv2d_backward_weight_tile__generic.template.c. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_KT 2
#define FC_TT 4
#define FC_VW 8
#define FC_BACKWARD_WEIGHT_TILE fc_sconv2d_backward_weight_tile_2x4__generic
#include "conv2d_backward_weight_tile__generic.template.c"
#undef FC_T
#undef FC_KT
#undef FC_TT
#undef FC_VW
#undef FC_BACKWARD_WEIGHT_TILE

#define FC_T double
#define FC_KT 2
#define FC_TT 4
#define FC_VW 4
#define FC_BACKWARD_WEIGHT_TILE fc_dconv2d_backward_weight_tile_2x4__generic
#include "conv2d_backward_weight_tile__generic.template.c"
