/*
 * AVX-512 strided copy: for a stride s <= 8, each run of 16 floats (8 doubles) is assembled from
 * the s vectors that hold them, one masked load and one lane permute per vector. The scalar loop
 * moved one element per load and store (building the column matrix of AlexNet conv1, stride 4,
 * was a third of its backward-weights time), and gathers are slower still on CPUs with the
 * gather-data-sampling microcode fix. Loads are masked to the elements copied, so nothing past
 * src[(n-1)*stride] is read. The strided add (col2im's inner loop) runs the same plan backwards:
 * each of the s vectors of dst takes its lanes' addends by one permute of the run, under the
 * mask of the lanes it owns, and is stored under that mask. Contract: fastconv_kernels.h.
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
#define FC_COPY_STRIDED_BODY(V, MASK, LOAD, PERMUTE, STORE, MASK_STORE, SETZERO, INDEX_T)     \
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
    if (i < n) {                                                                               \
        /* The last m < V elements: the same plan, loads masked to the elements up to the last \
         * one read, and a store of the first m lanes (a scalar tail cost as much as the rest  \
         * of a depthwise layer's strided band rows, a few dozen elements each). */           \
        const ptrdiff_t m = n - i, last = (m - 1) * S;                                         \
        const T *chunk = src + i * S;                                                          \
        VEC out = SETZERO();                                                                   \
        for (int k = 0; k < S && V * k <= last; k++) {                                         \
            const ptrdiff_t used = last - V * k + 1 < V ? last - V * k + 1 : V;                \
            out = PERMUTE(out, take[k], lane,                                                  \
                          LOAD((MASK)(read[k] & (((1ull << used) - 1))), chunk + V * k));      \
        }                                                                                      \
        MASK_STORE(dst + i, (MASK)((1ull << m) - 1), out);                                     \
    }

/*
 * dst lane (j*S) % V of the chunk's vector (j*S) / V takes addend j: `from` holds, per lane of
 * dst, the src lane it takes (lanes it does not own take 0, masked out).
 */
#define FC_ADD_STRIDED_BODY(V, MASK, LOAD, PERMUTE, ADD, STORE, INDEX_T)                       \
    INDEX_T from[FC_COPY_MAX_STRIDE][V] = {{0}};                                               \
    MASK own[FC_COPY_MAX_STRIDE] = {0};                                                        \
    for (int j = 0; j < V; j++) {                                                              \
        from[(j * S) / V][(j * S) % V] = (INDEX_T)j;                                           \
        own[(j * S) / V] |= (MASK)(1u << ((j * S) % V));                                       \
    }                                                                                          \
    __m512i lane[FC_COPY_MAX_STRIDE];                                                          \
    for (int k = 0; k < S; k++)                                                                \
        lane[k] = _mm512_loadu_si512(from[k]);                                                 \
    ptrdiff_t i = 0;                                                                           \
    for (; i + V <= n; i += V) {                                                               \
        const VEC addends = LOAD(src + i);                                                     \
        T *chunk = dst + i * S;                                                                \
        for (int k = 0; k < S; k++) {                                                          \
            const VEC d = MASKZ_LOAD(own[k], chunk + V * k);                                   \
            STORE(chunk + V * k, own[k], ADD(d, PERMUTE(lane[k], addends)));                   \
        }                                                                                      \
    }                                                                                          \
    for (; i < n; i++)                                                                         \
        dst[i * S] += src[i];

#define T float
#define VEC __m512
#define MASKZ_LOAD _mm512_maskz_loadu_ps
static inline __attribute__((always_inline)) void sadd_stride(const float *src, ptrdiff_t n,
                                                              float *dst, const int S)
{
    FC_ADD_STRIDED_BODY(16, __mmask16, _mm512_loadu_ps, _mm512_permutexvar_ps, _mm512_add_ps,
                        _mm512_mask_storeu_ps, int)
}
#undef MASKZ_LOAD
#undef T
#undef VEC

#define T double
#define VEC __m512d
#define MASKZ_LOAD _mm512_maskz_loadu_pd
static inline __attribute__((always_inline)) void dadd_stride(const double *src, ptrdiff_t n,
                                                              double *dst, const int S)
{
    FC_ADD_STRIDED_BODY(8, __mmask8, _mm512_loadu_pd, _mm512_permutexvar_pd, _mm512_add_pd,
                        _mm512_mask_storeu_pd, long long)
}
#undef MASKZ_LOAD
#undef T
#undef VEC

#define T float
#define VEC __m512
static inline __attribute__((always_inline)) void scopy_stride(const float *src, ptrdiff_t n,
                                                               float *dst, const int S)
{
    FC_COPY_STRIDED_BODY(16, __mmask16, _mm512_maskz_loadu_ps, _mm512_mask_permutexvar_ps,
                         _mm512_storeu_ps, _mm512_mask_storeu_ps, _mm512_setzero_ps, int)
}
#undef T
#undef VEC

#define T double
#define VEC __m512d
static inline __attribute__((always_inline)) void dcopy_stride(const double *src, ptrdiff_t n,
                                                               double *dst, const int S)
{
    FC_COPY_STRIDED_BODY(8, __mmask8, _mm512_maskz_loadu_pd, _mm512_mask_permutexvar_pd,
                         _mm512_storeu_pd, _mm512_mask_storeu_pd, _mm512_setzero_pd, long long)
}
#undef T
#undef VEC

/* Each stride from 2 to 8 gets its own inlined copy of the body (its masks and lane indices
 * fold into constants); other strides take the portable loop. */
#define FC_STRIDE_DISPATCH(BODY, GENERIC)                                                       \
    switch (stride) {                                                                          \
    case 2: BODY(src, n, dst, 2); return;                                                      \
    case 3: BODY(src, n, dst, 3); return;                                                      \
    case 4: BODY(src, n, dst, 4); return;                                                      \
    case 5: BODY(src, n, dst, 5); return;                                                      \
    case 6: BODY(src, n, dst, 6); return;                                                      \
    case 7: BODY(src, n, dst, 7); return;                                                      \
    case 8: BODY(src, n, dst, 8); return;                                                      \
    default: GENERIC(src, stride, n, dst); return;                                             \
    }

void fc_scopy_strided__avx512(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    FC_STRIDE_DISPATCH(scopy_stride, fc_scopy_strided__generic)
}

void fc_dcopy_strided__avx512(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    FC_STRIDE_DISPATCH(dcopy_stride, fc_dcopy_strided__generic)
}

void fc_sadd_strided__avx512(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst)
{
    FC_STRIDE_DISPATCH(sadd_stride, fc_sadd_strided__generic)
}

void fc_dadd_strided__avx512(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst)
{
    FC_STRIDE_DISPATCH(dadd_stride, fc_dadd_strided__generic)
}
