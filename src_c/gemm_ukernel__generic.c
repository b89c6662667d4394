/*
 * Portable GEMM micro-kernels (float 4x16, double 4x8): the fallback for every CPU and the
 * reference the SIMD micro-kernels are tested against. Compiled with the baseline flags only.
 * Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_MR 4
#define FC_NR 16
#define FC_UKERNEL fc_sgemm_ukernel_4x16__generic
#include "gemm_ukernel__generic.template.c"
#undef FC_T
#undef FC_MR
#undef FC_NR
#undef FC_UKERNEL

#define FC_T double
#define FC_MR 4
#define FC_NR 8
#define FC_UKERNEL fc_dgemm_ukernel_4x8__generic
#include "gemm_ukernel__generic.template.c"
