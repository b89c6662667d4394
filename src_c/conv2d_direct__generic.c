/*
 * Portable direct convolution, one output row of a block of filters per call (float and double).
 * Compiled with the baseline flags only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_CONV2D_DIRECT_ROW fc_sconv2d_direct_row__generic
#include "conv2d_direct__generic.template.c"
#undef FC_T
#undef FC_CONV2D_DIRECT_ROW

#define FC_T double
#define FC_CONV2D_DIRECT_ROW fc_dconv2d_direct_row__generic
#include "conv2d_direct__generic.template.c"
