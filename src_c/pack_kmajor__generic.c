/*
 * Portable packing of rows into a k-major GEMM panel (float and double): the fallback for every
 * CPU and the reference for the SIMD version. Compiled with the baseline flags only.
 * Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_PACK_KMAJOR_BODY                                                                   \
    for (ptrdiff_t i = 0; i < rows; i++) {                                                    \
        const_row = src + i * row_stride;                                                     \
        for (ptrdiff_t p = 0; p < kc; p++)                                                    \
            dst[p * panel + i] = const_row[p];                                                \
    }                                                                                         \
    for (ptrdiff_t i = rows; i < panel; i++)                                                  \
        for (ptrdiff_t p = 0; p < kc; p++)                                                    \
            dst[p * panel + i] = 0;

void fc_spack_kmajor__generic(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                              ptrdiff_t kc, ptrdiff_t panel, float *dst)
{
    const float *const_row;
    FC_PACK_KMAJOR_BODY
}

void fc_dpack_kmajor__generic(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                              ptrdiff_t kc, ptrdiff_t panel, double *dst)
{
    const double *const_row;
    FC_PACK_KMAJOR_BODY
}
