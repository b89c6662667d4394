/*
 * AVX-512 vector operations for the *.simd.template.c kernel bodies, by dtype: include it after
 * defining FC_SINGLE (1: float, 0: double); it may be included again for the other dtype. Defines
 * FC_T, FC_VEC, FC_VW (lanes), FC_VZERO(), FC_VLOADU(p), FC_VBROADCAST(p) (every lane = *p),
 * FC_VFMADD(a, b, c) (a*b + c), FC_VADD(a, b) and FC_VSTOREU(p, v).
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
#endif
