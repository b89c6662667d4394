/*
 * AVX-512 definitions of the vector interface of the *.simd.template.c kernel bodies (see
 * simd_vector.h), for the dtype FC_SINGLE selects; include it again for the other dtype.
 */
#include "simd_vector.h"
#if FC_SINGLE
#define FC_T float
#define FC_VEC __m512
#define FC_VW 16
#define FC_VZERO() _mm512_setzero_ps()
#define FC_VLOADU(p) _mm512_loadu_ps(p)
#define FC_VBROADCAST(p) _mm512_set1_ps(*(p))
#define FC_VFMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define FC_VADD(a, b) _mm512_add_ps(a, b)
#define FC_VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define FC_VSTREAM(p, v) _mm512_stream_ps(p, v)
#define FC_VSUM(v) _mm512_reduce_add_ps(v)
#define FC_MASK __mmask16
#define FC_MASK_FIRST(n) ((__mmask16)((1u << (n)) - 1))
#define FC_VLOADU_MASKZ(m, p) _mm512_maskz_loadu_ps(m, p)
#else
#define FC_T double
#define FC_VEC __m512d
#define FC_VW 8
#define FC_VZERO() _mm512_setzero_pd()
#define FC_VLOADU(p) _mm512_loadu_pd(p)
#define FC_VBROADCAST(p) _mm512_set1_pd(*(p))
#define FC_VFMADD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define FC_VADD(a, b) _mm512_add_pd(a, b)
#define FC_VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define FC_VSTREAM(p, v) _mm512_stream_pd(p, v)
#define FC_VSUM(v) _mm512_reduce_add_pd(v)
#define FC_MASK __mmask8
#define FC_MASK_FIRST(n) ((__mmask8)((1u << (n)) - 1))
#define FC_VLOADU_MASKZ(m, p) _mm512_maskz_loadu_pd(m, p)
#endif
