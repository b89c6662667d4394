/*
 * AVX2 strided copy (the band rows of strided convolutions): at stride 2, each run of 8 floats
 * (4 doubles) is split out of the two vectors that hold it by one shuffle and one lane permute;
 * other strides take the portable loop. The second vector's load is masked to the elements
 * copied, so nothing past src[(n-1)*stride] is read. The scalar loop took 8.5% of
 * resnet_3x3_s2's forward (perf, T=1; asv Conv2d across commit 65d0db4 compares the same). Contract: fastconv_kernels.h. Built with -mavx2 -mfma.
 */
#include <immintrin.h>

#include "even_columns__avx2.h"
#include "fastconv_kernels.h"

void fc_scopy_strided__avx2(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    ptrdiff_t i = 0;
    if (stride == 2) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, fc_avx2_load_even_floats(src + 2 * i));
    }
    for (; i < n; i++)
        dst[i] = src[i * stride];
}

void fc_dcopy_strided__avx2(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    ptrdiff_t i = 0;
    if (stride == 2) {
        const __m256i first3 = _mm256_setr_epi64x(-1, -1, -1, 0);
        for (; i + 4 <= n; i += 4) {
            const __m256d lo = _mm256_loadu_pd(src + 2 * i);
            const __m256d hi = _mm256_maskload_pd(src + 2 * i + 4, first3);
            _mm256_storeu_pd(dst + i,
                             _mm256_permute4x64_pd(_mm256_unpacklo_pd(lo, hi), 0xD8));
        }
    }
    for (; i < n; i++)
        dst[i] = src[i * stride];
}
