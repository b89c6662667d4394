/*
 * AVX2+FMA definitions of the vector interface of the *.simd.template.c kernel bodies (see
 * simd_vector.h), for the dtype FC_SINGLE selects; include it again for the other dtype.
 */
#ifndef FC_SIMD_VECTOR_AVX2_SUMS
#define FC_SIMD_VECTOR_AVX2_SUMS
static inline float fc_avx2_sum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline double fc_avx2_sum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
#endif
#include "simd_vector.h"
#if FC_SINGLE
#define FC_T float
#define FC_VEC __m256
#define FC_VW 8
#define FC_VZERO() _mm256_setzero_ps()
#define FC_VLOADU(p) _mm256_loadu_ps(p)
#define FC_VBROADCAST(p) _mm256_broadcast_ss(p)
#define FC_VFMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define FC_VADD(a, b) _mm256_add_ps(a, b)
#define FC_VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define FC_VSTREAM(p, v) _mm256_stream_ps(p, v)
#define FC_VSUM(v) fc_avx2_sum_ps(v)
#define FC_MASK __m256i
#define FC_MASK_FIRST(n) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define FC_VLOADU_MASKZ(m, p) _mm256_maskload_ps(p, m)
#else
#define FC_T double
#define FC_VEC __m256d
#define FC_VW 4
#define FC_VZERO() _mm256_setzero_pd()
#define FC_VLOADU(p) _mm256_loadu_pd(p)
#define FC_VBROADCAST(p) _mm256_broadcast_sd(p)
#define FC_VFMADD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define FC_VADD(a, b) _mm256_add_pd(a, b)
#define FC_VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define FC_VSTREAM(p, v) _mm256_stream_pd(p, v)
#define FC_VSUM(v) fc_avx2_sum_pd(v)
#define FC_MASK __m256i
#define FC_MASK_FIRST(n) \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define FC_VLOADU_MASKZ(m, p) _mm256_maskload_pd(p, m)
#endif
