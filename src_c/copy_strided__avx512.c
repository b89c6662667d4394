/*
 * AVX-512 strided copy: for a stride s <= 8, each run of 16 floats (8 doubles) is assembled from
 * the s vectors that hold them, one masked load and one lane permute per vector. The scalar loop
 * moved one element per load and store (building the column matrix of AlexNet conv1, stride 4,
 * was a third of its backward-weights time), and gathers are slower still on CPUs with the
 * gather-data-sampling microcode fix. Loads are masked to the elements copied, so nothing past
 * src[(n-1)*stride] is read. Contract: fastconv_kernels.h.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"

#define FC_COPY_MAX_STRIDE 8

/*
 * Output lane j of a chunk takes element j*S: lane (j*S) % V of the chunk's vector (j*S) / V.
 * S is a constant at every call (see the switches below), so the masks and lane indices fold
 * into constants: the copies are called once per output-row run, often of a few dozen elements.
 */
#define FC_COPY_STRIDED_BODY(V, MASK, LOAD, PERMUTE, STORE, SETZERO, INDEX_T)                 \
    INDEX_T lanes[V];                                                                          \
    MASK take[FC_COPY_MAX_STRIDE] = {0}, read[FC_COPY_MAX_STRIDE] = {0};                       \
    for (int j = 0; j < V; j++) {                                                              \
        lanes[j] = (j * S) % V;                                                                \
        take[(j * S) / V] |= (MASK)(1u << j);                                                  \
        read[(j * S) / V] |= (MASK)(1u << ((j * S) % V));                                      \
    }                                                                                          \
    const __m512i lane = _mm512_loadu_si512(lanes);                                            \
    ptrdiff_t i = 0;                                                                           \
    for (; i + V <= n; i += V) {                                                               \
        const T *chunk = src + i * S;                                                          \
        VEC out = SETZERO();                                                                   \
        for (int k = 0; k < S; k++)                                                            \
            out = PERMUTE(out, take[k], lane, LOAD(read[k], chunk + V * k));                   \
        STORE(dst + i, out);                                                                   \
    }                                                                                          \
    for (; i < n; i++)                                                                         \
        dst[i] = src[i * S];

#define T float
#define VEC __m512
static inline __attribute__((always_inline)) void scopy_stride(const float *src, ptrdiff_t n,
                                                               float *dst, const int S)
{
    FC_COPY_STRIDED_BODY(16, __mmask16, _mm512_maskz_loadu_ps, _mm512_mask_permutexvar_ps,
                         _mm512_storeu_ps, _mm512_setzero_ps, int)
}
#undef T
#undef VEC

#define T double
#define VEC __m512d
static inline __attribute__((always_inline)) void dcopy_stride(const double *src, ptrdiff_t n,
                                                               double *dst, const int S)
{
    FC_COPY_STRIDED_BODY(8, __mmask8, _mm512_maskz_loadu_pd, _mm512_mask_permutexvar_pd,
                         _mm512_storeu_pd, _mm512_setzero_pd, long long)
}
#undef T
#undef VEC

void fc_scopy_strided__avx512(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    switch (stride) {
    case 2: scopy_stride(src, n, dst, 2); return;
    case 3: scopy_stride(src, n, dst, 3); return;
    case 4: scopy_stride(src, n, dst, 4); return;
    case 5: scopy_stride(src, n, dst, 5); return;
    case 6: scopy_stride(src, n, dst, 6); return;
    case 7: scopy_stride(src, n, dst, 7); return;
    case 8: scopy_stride(src, n, dst, 8); return;
    default: fc_scopy_strided__generic(src, stride, n, dst); return;
    }
}

void fc_dcopy_strided__avx512(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    switch (stride) {
    case 2: dcopy_stride(src, n, dst, 2); return;
    case 3: dcopy_stride(src, n, dst, 3); return;
    case 4: dcopy_stride(src, n, dst, 4); return;
    case 5: dcopy_stride(src, n, dst, 5); return;
    case 6: dcopy_stride(src, n, dst, 6); return;
    case 7: dcopy_stride(src, n, dst, 7); return;
    case 8: dcopy_stride(src, n, dst, 8); return;
    default: fc_dcopy_strided__generic(src, stride, n, dst); return;
    }
}
