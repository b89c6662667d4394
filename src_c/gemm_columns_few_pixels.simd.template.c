/*
 * Body of the few-pixel column GEMM micro-kernels (contract: fastconv_kernels.h), included once
 * per dtype by gemm_few_pixels_ukernel__<isa>.c after simd_vector__<isa>.h, with
 * FC_COLUMNS_UKERNEL (function name) defined. Lanes along w's rows (the taps, contiguous), one
 * broadcast per filter and pixel: 12 accumulators, 12 / pixels vectors of taps per tile.
 */
#define FC_COLUMNS_TILE FC_CONCAT(FC_COLUMNS_UKERNEL, _tile)
#define FC_COLUMNS_PASS FC_CONCAT(FC_COLUMNS_UKERNEL, _pass)

/* c[i*ldc + q] (+)= sum_f w[f*w_row_stride + i] * b[f*b_row_stride + q] for the V vectors of
 * taps i from 0 (the last one `last` lanes wide) and q < NQ. */
static inline __attribute__((always_inline)) void FC_COLUMNS_TILE(
    int NQ, int V, ptrdiff_t last, ptrdiff_t kc, const FC_T *w, ptrdiff_t w_row_stride,
    const FC_T *b, ptrdiff_t b_row_stride, FC_T *c, ptrdiff_t ldc, int accumulate)
{
    const FC_MASK last_lanes = FC_MASK_FIRST(last);
    FC_VEC acc[4][12];
#pragma GCC unroll 4
    for (int q = 0; q < NQ; q++)
#pragma GCC unroll 12
        for (int v = 0; v < V; v++)
            acc[q][v] = FC_VZERO();
    for (ptrdiff_t f = 0; f < kc; f++) {
        const FC_T *row = w + f * w_row_stride;
        FC_VEC taps[12];
#pragma GCC unroll 12
        for (int v = 0; v < V; v++)
            taps[v] = v < V - 1 || last == FC_VW ? FC_VLOADU(row + v * FC_VW)
                                                 : FC_VLOADU_MASKZ(last_lanes, row + v * FC_VW);
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            const FC_VEC pixel = FC_VBROADCAST(b + f * b_row_stride + q);
#pragma GCC unroll 12
            for (int v = 0; v < V; v++)
                acc[q][v] = FC_VFMADD(taps[v], pixel, acc[q][v]);
        }
    }
    for (int q = 0; q < NQ; q++)
        for (int v = 0; v < V; v++) {
            FC_T sums[FC_VW];
            FC_VSTOREU(sums, acc[q][v]);
            for (int i = 0; i < (v < V - 1 ? FC_VW : last); i++) {
                FC_T *ci = c + (v * FC_VW + i) * ldc + q;
                *ci = accumulate ? *ci + sums[i] : sums[i];
            }
        }
}

/* All n taps for NQ pixels: whole tiles of 12 / NQ vectors, then single vectors, the last one
 * partial. */
static inline __attribute__((always_inline)) void FC_COLUMNS_PASS(
    int NQ, ptrdiff_t kc, const FC_T *w, ptrdiff_t w_row_stride, ptrdiff_t n, const FC_T *b,
    ptrdiff_t b_row_stride, FC_T *c, ptrdiff_t ldc, int accumulate)
{
    const int V = 12 / NQ;   /* a constant once inlined */
    ptrdiff_t i = 0;
    for (; i + V * FC_VW <= n; i += V * FC_VW)
        FC_COLUMNS_TILE(NQ, V, FC_VW, kc, w + i, w_row_stride, b, b_row_stride, c + i * ldc,
                        ldc, accumulate);
    for (; i < n; i += FC_VW)
        FC_COLUMNS_TILE(NQ, 1, n - i < FC_VW ? n - i : FC_VW, kc, w + i, w_row_stride, b,
                        b_row_stride, c + i * ldc, ldc, accumulate);
}

void FC_COLUMNS_UKERNEL(ptrdiff_t kc, const FC_T *restrict w, ptrdiff_t w_row_stride,
                        ptrdiff_t n, const FC_T *restrict b, ptrdiff_t b_row_stride,
                        ptrdiff_t pixels, FC_T *restrict c, ptrdiff_t ldc, int accumulate)
{
    for (ptrdiff_t q0 = 0; q0 < pixels; q0 += 4) {
        const ptrdiff_t count = pixels - q0 < 4 ? pixels - q0 : 4;
        switch (count) {
        case 1: FC_COLUMNS_PASS(1, kc, w, w_row_stride, n, b + q0, b_row_stride, c + q0, ldc,
                                accumulate); break;
        case 2: FC_COLUMNS_PASS(2, kc, w, w_row_stride, n, b + q0, b_row_stride, c + q0, ldc,
                                accumulate); break;
        case 3: FC_COLUMNS_PASS(3, kc, w, w_row_stride, n, b + q0, b_row_stride, c + q0, ldc,
                                accumulate); break;
        default: FC_COLUMNS_PASS(4, kc, w, w_row_stride, n, b + q0, b_row_stride, c + q0, ldc,
                                 accumulate); break;
        }
    }
}

#undef FC_COLUMNS_TILE
#undef FC_COLUMNS_PASS
