/*
 * AVX2 helpers shared by the stride-2 kernels (band copy, max-pooling): the 8 floats at even (or
 * odd) positions of 16 consecutive ones, split out of their two vectors by one shuffle and one
 * lane permute. Include after <immintrin.h>, in files built with -mavx2.
 */
#ifndef FC_EVEN_COLUMNS_AVX2_H
#define FC_EVEN_COLUMNS_AVX2_H

/* Elements 0, 2, ..., 14 (odd: 1, 3, ..., 15) of lo:hi. */
static inline __m256 fc_avx2_even_floats(__m256 lo, __m256 hi, int odd)
{
    const __m256 mixed = odd ? _mm256_shuffle_ps(lo, hi, 0xDD) : _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), 0xD8));
}

/* src[0], src[2], ..., src[14], reading nothing past src[14] (it may be the end of an array). */
static inline __m256 fc_avx2_load_even_floats(const float *src)
{
    const __m256i first7 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
    return fc_avx2_even_floats(_mm256_loadu_ps(src), _mm256_maskload_ps(src + 8, first7), 0);
}

#endif
