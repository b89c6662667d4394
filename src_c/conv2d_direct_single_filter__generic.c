/*
 * Portable single-filter direct-convolution kernels (float 8 pixels per vector, double 4: the
 * portable pixel tiles' widths), the fallback for every CPU. Compiled with the baseline flags
 * only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_VW 8
#define FC_SINGLE_FILTER fc_sconv2d_direct_single_filter__generic
#include "conv2d_direct_single_filter__generic.template.c"
#undef FC_T
#undef FC_VW
#undef FC_SINGLE_FILTER

#define FC_T double
#define FC_VW 4
#define FC_SINGLE_FILTER fc_dconv2d_direct_single_filter__generic
#include "conv2d_direct_single_filter__generic.template.c"
#undef FC_T
#undef FC_VW
#undef FC_SINGLE_FILTER
