/*
 * In-register transposes (8 x 8 floats, 4 x 4 doubles), lane masks and partial-vector stores for
 * the AVX2 files that turn row-major blocks around: the GEMM pack, the filter tiles' store, the
 * few-pixel GEMM. Include only from files built with -mavx2.
 */
#ifndef FASTCONV_TRANSPOSE_8X8_AVX2_H
#define FASTCONV_TRANSPOSE_8X8_AVX2_H

#include <immintrin.h>
#include <stddef.h>

/* The first n lanes set (0 <= n <= 8): the mask of a partial maskload. */
static inline __m256i first_float_lanes(ptrdiff_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256i first_double_lanes(ptrdiff_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/*
 * dst[0:n] := the first n lanes of v. No masked stores: AMD's are microcoded, so a partial run
 * goes out in 4-, 2- and 1-element pieces.
 */
static inline void store_first_floats(float *dst, __m256 v, ptrdiff_t n)
{
    if (n == 8) {
        _mm256_storeu_ps(dst, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(dst, part);
        part = _mm256_extractf128_ps(v, 1);
        dst += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)dst, part);
        part = _mm_movehl_ps(part, part);
        dst += 2;
        n -= 2;
    }
    if (n)
        _mm_store_ss(dst, part);
}

static inline void store_first_doubles(double *dst, __m256d v, ptrdiff_t n)
{
    if (n == 4) {
        _mm256_storeu_pd(dst, v);
        return;
    }
    __m128d part = _mm256_castpd256_pd128(v);
    if (n >= 2) {
        _mm_storeu_pd(dst, part);
        part = _mm256_extractf128_pd(v, 1);
        dst += 2;
        n -= 2;
    }
    if (n)
        _mm_store_sd(dst, part);
}

/* r[q] := column q of the 8 x 8 block whose rows are r[0..7] on entry. */
static inline void transpose_8x8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    /* Per 128-bit lane L, s[4g + k] holds column 4L + k of rows 4g .. 4g+3. */
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* r[q] := column q of the 4 x 4 block whose rows are r[0..3] on entry. */
static inline void transpose_4x4(__m256d r[4])
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

#endif /* FASTCONV_TRANSPOSE_8X8_AVX2_H */
