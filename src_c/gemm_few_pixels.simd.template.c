/*
 * Body of the few-pixel GEMM micro-kernels (contract: fastconv_kernels.h), included once per
 * dtype by gemm_few_pixels_ukernel__<isa>.c after simd_vector__<isa>.h, with
 * FC_FEW_PIXELS_UKERNEL (function name) and FC_TRANSPOSE (an in-register FC_VW x FC_VW
 * transpose) defined. 2 * FC_VW filter rows, FC_VW taps a step, lanes along the filters: one
 * FMA chain per vector of filters and pixel, where the broadcasting kernel has one per row.
 */
#define FC_FEW_STEP FC_CONCAT(FC_FEW_PIXELS_UKERNEL, _step)
#define FC_FEW_TILE FC_CONCAT(FC_FEW_PIXELS_UKERNEL, _tile)
#define FC_FEW_PASS FC_CONCAT(FC_FEW_PIXELS_UKERNEL, _pass)

/* acc[h][q] += w[h*FC_VW + i][j] * b[j][q] for each row i < FC_VW (zero past `rows`), taps
 * j < `taps` in increasing order, q < NQ. */
static inline __attribute__((always_inline)) void FC_FEW_STEP(
    int NQ, const FC_T *w, ptrdiff_t w_row_stride, ptrdiff_t rows, const FC_T *b,
    ptrdiff_t b_row_stride, ptrdiff_t taps, FC_VEC acc[2][4])
{
    const FC_MASK tap_lanes = FC_MASK_FIRST(taps);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        FC_VEC r[FC_VW];
#pragma GCC unroll 8
        for (int i = 0; i < FC_VW; i++) {
            const ptrdiff_t row = h * FC_VW + i;
            if (row >= rows)
                r[i] = FC_VZERO();
            else if (taps == FC_VW)
                r[i] = FC_VLOADU(w + row * w_row_stride);
            else
                r[i] = FC_VLOADU_MASKZ(tap_lanes, w + row * w_row_stride);
        }
        FC_TRANSPOSE(r);   /* r[j]: tap j of the FC_VW rows */
#pragma GCC unroll 8
        for (int j = 0; j < FC_VW; j++) {
            if (j >= taps)
                break;
            const FC_T *pixels = b + j * b_row_stride;
#pragma GCC unroll 4
            for (int q = 0; q < NQ; q++)
                acc[h][q] = FC_VFMADD(r[j], FC_VBROADCAST(pixels + q), acc[h][q]);
        }
    }
}

/* NQ <= 4 pixels: 2 * NQ accumulators beside the FC_VW transposed taps. NQ is a constant once
 * inlined, as are rows (for whole row blocks) and the main loop's taps: the accumulators stay
 * in registers and the row and tap tests fold away. */
static inline __attribute__((always_inline)) void FC_FEW_TILE(
    int NQ, ptrdiff_t kc, const FC_T *w, ptrdiff_t w_row_stride, ptrdiff_t rows,
    const FC_T *b, ptrdiff_t b_row_stride, FC_T *c, ptrdiff_t ldc)
{
    FC_VEC acc[2][4];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++)
            acc[h][q] = FC_VZERO();
    ptrdiff_t p0 = 0;
    for (; p0 + FC_VW <= kc; p0 += FC_VW)
        FC_FEW_STEP(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride, b_row_stride, FC_VW,
                    acc);
    if (p0 < kc)
        FC_FEW_STEP(NQ, w + p0, w_row_stride, rows, b + p0 * b_row_stride, b_row_stride,
                    kc - p0, acc);
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < NQ; q++) {
            FC_T sums[FC_VW];
            FC_VSTOREU(sums, acc[h][q]);
            for (int i = 0; i < FC_VW && h * FC_VW + i < rows; i++)
                c[(h * FC_VW + i) * ldc + q] = c[(h * FC_VW + i) * ldc + q] + sums[i];
        }
}

/* One pass of 1 to 4 pixels. */
static inline __attribute__((always_inline)) void FC_FEW_PASS(
    ptrdiff_t pixels, ptrdiff_t kc, const FC_T *w, ptrdiff_t w_row_stride, ptrdiff_t rows,
    const FC_T *b, ptrdiff_t b_row_stride, FC_T *c, ptrdiff_t ldc)
{
    switch (pixels) {
    case 1: FC_FEW_TILE(1, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc); break;
    case 2: FC_FEW_TILE(2, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc); break;
    case 3: FC_FEW_TILE(3, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc); break;
    default: FC_FEW_TILE(4, kc, w, w_row_stride, rows, b, b_row_stride, c, ldc); break;
    }
}

void FC_FEW_PIXELS_UKERNEL(ptrdiff_t kc, const FC_T *restrict w, ptrdiff_t w_row_stride,
                           ptrdiff_t rows, const FC_T *restrict b, ptrdiff_t b_row_stride,
                           ptrdiff_t pixels, FC_T *restrict c, ptrdiff_t ldc)
{
    /* Four pixels a pass; more pixels read the same rows again (from cache). */
    for (ptrdiff_t q0 = 0; q0 < pixels; q0 += 4) {
        const ptrdiff_t n = pixels - q0 < 4 ? pixels - q0 : 4;
        if (rows == 2 * FC_VW)
            FC_FEW_PASS(n, kc, w, w_row_stride, 2 * FC_VW, b + q0, b_row_stride, c + q0, ldc);
        else
            FC_FEW_PASS(n, kc, w, w_row_stride, rows, b + q0, b_row_stride, c + q0, ldc);
    }
}

#undef FC_FEW_STEP
#undef FC_FEW_TILE
#undef FC_FEW_PASS
