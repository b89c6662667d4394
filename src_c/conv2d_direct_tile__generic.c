/*
 * Portable direct-convolution register tiles (float 4 filters x 2 x 8 pixels, double 4 x 2 x 4),
 * the fallback for every CPU. Compiled with the baseline flags only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_KT 4
#define FC_VW 8
#define FC_DIRECT_TILE fc_sconv2d_direct_tile_4x16__generic
#include "conv2d_direct_tile__generic.template.c"
#undef FC_T
#undef FC_KT
#undef FC_VW
#undef FC_DIRECT_TILE

#define FC_T double
#define FC_KT 4
#define FC_VW 4
#define FC_DIRECT_TILE fc_dconv2d_direct_tile_4x8__generic
#include "conv2d_direct_tile__generic.template.c"
