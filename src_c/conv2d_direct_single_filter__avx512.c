/*
 * AVX-512 (16 floats or 8 doubles per vector) single-filter direct-convolution kernels; the body is
 * conv2d_direct_single_filter.simd.template.c. Contract: fastconv_kernels.h.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_SINGLE 1
#include "simd_vector__avx512.h"
#define FC_SINGLE_FILTER fc_sconv2d_direct_single_filter__avx512
#include "conv2d_direct_single_filter.simd.template.c"
#undef FC_SINGLE
#undef FC_SINGLE_FILTER

#define FC_SINGLE 0
#include "simd_vector__avx512.h"
#define FC_SINGLE_FILTER fc_dconv2d_direct_single_filter__avx512
#include "conv2d_direct_single_filter.simd.template.c"
#undef FC_SINGLE
#undef FC_SINGLE_FILTER
