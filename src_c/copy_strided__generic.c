/*
 * Portable strided copy and add (float and double): the fallback for every CPU and the reference
 * for the SIMD versions. Compiled with the baseline flags only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

void fc_scopy_strided__generic(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = src[i * stride];
}

void fc_dcopy_strided__generic(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = src[i * stride];
}

void fc_sadd_strided__generic(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i * stride] += src[i];
}

void fc_dadd_strided__generic(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i * stride] += src[i];
}
