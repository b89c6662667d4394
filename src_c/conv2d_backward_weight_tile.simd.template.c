/*
 * Backward-weights register tile body for one ISA and dtype, included by
 * conv2d_backward_weight_tile__<isa>.c after simd_vector__<isa>.h (the vector type and
 * operations) with FC_KT (filters), FC_TT (taps) and FC_BACKWARD_WEIGHT_TILE (function name)
 * defined. Contract: fastconv_kernels.h.
 *
 * KT x TT accumulators + KT gradient vectors + 1 input vector stay in registers over all the
 * rows' vector steps. The loop has no branch on kt or tt: filters past kt repeat filter 0's rows
 * and taps past tt repeat tap 0 (read, never stored), and it is one loop over the steps of all
 * rows. With those tests inside, nested row and column loops, or the accumulators indexed by
 * run-time bounds at the end, the compiler kept the accumulators on the stack (cifar_3x3 dw at
 * 27 GFLOP/s with AVX-512; the portable body compiled for AVX2 ran 17x slower than AVX-512).
 */
/* One vector step of every filter's gradient against every tap's input, loaded by LOAD(p). */
#define FC_DW_TILE_STEP(LOAD)                                                 \
    do {                                                                      \
        FC_VEC grad[KT];                                                      \
        _Pragma("GCC unroll 8")                                               \
        for (int k = 0; k < KT; k++)                                          \
            grad[k] = LOAD(dy_row + grad_offset[k] + wo);                     \
        _Pragma("GCC unroll 8")                                               \
        for (int t = 0; t < TT; t++) {                                        \
            const FC_VEC in = LOAD(x_row + offset[t] + wo);                   \
            _Pragma("GCC unroll 8")                                           \
            for (int k = 0; k < KT; k++)                                      \
                acc[k][t] = FC_VFMADD(grad[k], in, acc[k][t]);                \
        }                                                                     \
        wo += FC_VW;                                                          \
        if (wo >= WO) {                                                       \
            wo = 0;                                                           \
            dy_row += dy_row_stride;                                          \
            x_row += x_row_stride;                                            \
        }                                                                     \
    } while (0)

void FC_BACKWARD_WEIGHT_TILE(ptrdiff_t rows, ptrdiff_t WO, const FC_T *dy, ptrdiff_t dy_k_stride,
                             ptrdiff_t dy_row_stride, const FC_T *x, ptrdiff_t x_row_stride,
                             const ptrdiff_t *tap_offset, FC_T *dw, ptrdiff_t dw_k_stride,
                             ptrdiff_t kt, ptrdiff_t tt)
{
    enum { KT = FC_KT, TT = FC_TT };
    ptrdiff_t grad_offset[KT], offset[TT];
    for (int k = 0; k < KT; k++)
        grad_offset[k] = (k < kt ? k : 0) * dy_k_stride;
    for (int t = 0; t < TT; t++)
        offset[t] = tap_offset[t < tt ? t : 0];
    FC_VEC acc[KT][TT];
#pragma GCC unroll 8
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++)
            acc[k][t] = FC_VZERO();
    const ptrdiff_t full = WO / FC_VW * FC_VW, steps = rows * ((WO + FC_VW - 1) / FC_VW);
    const FC_T *dy_row = dy, *x_row = x;
    ptrdiff_t wo = 0;
    if (full == WO) {
        for (ptrdiff_t step = 0; step < steps; step++)
            FC_DW_TILE_STEP(FC_VLOADU);
    } else {
        /* Rows end in a partial vector: every step loads under a mask (all lanes but the
         * last step of each row), so nothing past a row of dy is read. */
        const FC_MASK all_lanes = FC_MASK_FIRST(FC_VW), tail_lanes = FC_MASK_FIRST(WO - full);
        for (ptrdiff_t step = 0; step < steps; step++) {
            const FC_MASK lanes = wo < full ? all_lanes : tail_lanes;
#define FC_DW_TILE_LOAD_LANES(p) FC_VLOADU_MASKZ(lanes, p)
            FC_DW_TILE_STEP(FC_DW_TILE_LOAD_LANES);
#undef FC_DW_TILE_LOAD_LANES
        }
    }
    /* Unrolled with constant indices, so the accumulators never need an address in memory. */
#pragma GCC unroll 8
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++)
            if (k < kt && t < tt)
                dw[k * dw_k_stride + t] += FC_VSUM(acc[k][t]);
}

#undef FC_DW_TILE_STEP
