/*
 * AVX-512 vector operations for the *.simd.template.c kernel bodies, by dtype: include it after
 * defining FC_SINGLE (1: float, 0: double); it may be included again for the other dtype. Defines
 * FC_T, FC_VEC, FC_VW (lanes), FC_VZERO(), FC_VLOADU(p), FC_VBROADCAST(p) (every lane = *p),
 * FC_VFMADD(a, b, c) (a*b + c), FC_VADD(a, b), FC_VSTOREU(p, v), FC_VSUM(v) (the lanes' sum) and,
 * for partial vectors, FC_MASK, FC_MASK_FIRST(n) (the first n <= FC_VW lanes) and
 * FC_VLOADU_MASKZ(m, p) (lanes outside m read nothing and are zero).
 */
#undef FC_T
#undef FC_VEC
#undef FC_VW
#undef FC_VZERO
#undef FC_VLOADU
#undef FC_VBROADCAST
#undef FC_VFMADD
#undef FC_VADD
#undef FC_VSTOREU
#undef FC_VSUM
#undef FC_MASK
#undef FC_MASK_FIRST
#undef FC_VLOADU_MASKZ
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
#define FC_VSUM(v) _mm512_reduce_add_pd(v)
#define FC_MASK __mmask8
#define FC_MASK_FIRST(n) ((__mmask8)((1u << (n)) - 1))
#define FC_VLOADU_MASKZ(m, p) _mm512_maskz_loadu_pd(m, p)
#endif
