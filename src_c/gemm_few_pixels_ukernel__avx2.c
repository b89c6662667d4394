/*
 * AVX2+FMA few-pixel GEMM micro-kernels: 16 float or 8 double filter rows read where they lie,
 * turned around by 8x8 or 4x4 register transposes, against 1 to 4 broadcast pixels a pass
 * (body: gemm_few_pixels.simd.template.c; why: conv2d_im2col_streaming_filters); and their
 * transpose for dx, lanes along the rows (gemm_columns_few_pixels.simd.template.c; why:
 * conv2d_backward_input). Contract: fastconv_kernels.h. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_8x8__avx2.h"

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_TRANSPOSE transpose_8x8
#define FC_FEW_PIXELS_UKERNEL fc_sgemm_few_pixels_ukernel_16__avx2
#include "gemm_few_pixels.simd.template.c"
#define FC_COLUMNS_UKERNEL fc_sgemm_columns_few_pixels__avx2
#include "gemm_columns_few_pixels.simd.template.c"
#undef FC_COLUMNS_UKERNEL
#undef FC_SINGLE
#undef FC_TRANSPOSE
#undef FC_FEW_PIXELS_UKERNEL

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_TRANSPOSE transpose_4x4
#define FC_FEW_PIXELS_UKERNEL fc_dgemm_few_pixels_ukernel_8__avx2
#include "gemm_few_pixels.simd.template.c"
#define FC_COLUMNS_UKERNEL fc_dgemm_columns_few_pixels__avx2
#include "gemm_columns_few_pixels.simd.template.c"
