/*
 * AVX2 packing of rows into a k-major GEMM panel by 8x8 float or 4x4 double register
 * transposes (body: pack_kmajor.simd.template.c). Contract: fastconv_kernels.h.
 * Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_8x8__avx2.h"

#define FC_SINGLE 1
#include "simd_vector__avx2.h"
#define FC_PACK_KMAJOR fc_spack_kmajor__avx2
#define FC_TRANSPOSE transpose_8x8
#define FC_STORE_FIRST store_first_floats
#include "pack_kmajor.simd.template.c"
#undef FC_SINGLE
#undef FC_PACK_KMAJOR
#undef FC_TRANSPOSE
#undef FC_STORE_FIRST

#define FC_SINGLE 0
#include "simd_vector__avx2.h"
#define FC_PACK_KMAJOR fc_dpack_kmajor__avx2
#define FC_TRANSPOSE transpose_4x4
#define FC_STORE_FIRST store_first_doubles
#include "pack_kmajor.simd.template.c"
