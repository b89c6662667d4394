/*
 * Filter-vector backward-weights tile body for one ISA and dtype, included by
 * conv2d_backward_weight_filter_tile__<isa>.c after simd_vector__<isa>.h (the vector type and
 * operations) with FC_MR (taps), FC_NR (filters: 2 vectors) and FC_BACKWARD_WEIGHT_FILTER_TILE
 * (function name) defined. Contract: fastconv_kernels.h.
 *
 * Per output pixel: two vector loads of the packed output gradient, MR input values broadcast
 * from the band (one per tap: MR sequential streams, each read a cache line per 16 floats),
 * 2*MR FMAs into 2*MR accumulators. Nothing is packed from the input.
 */
void FC_BACKWARD_WEIGHT_FILTER_TILE(ptrdiff_t rows, ptrdiff_t WO, const FC_T *x,
                                    ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset,
                                    const FC_T *g, FC_T *c)
{
    enum { MR = FC_MR, NR = FC_NR };
    FC_VEC acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        acc0[i] = FC_VZERO();
        acc1[i] = FC_VZERO();
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const FC_T *x_row = x + r * x_row_stride;
        const FC_T *g_row = g + r * WO * NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const FC_VEC g0 = FC_VLOADU(g_row + wo * NR);
            const FC_VEC g1 = FC_VLOADU(g_row + wo * NR + FC_VW);
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                const FC_VEC xi = FC_VBROADCAST(x_row + tap_offset[i] + wo);
                acc0[i] = FC_VFMADD(xi, g0, acc0[i]);
                acc1[i] = FC_VFMADD(xi, g1, acc1[i]);
            }
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        FC_T *ci = c + i * NR;
        FC_VSTOREU(ci, FC_VADD(FC_VLOADU(ci), acc0[i]));
        FC_VSTOREU(ci + FC_VW, FC_VADD(FC_VLOADU(ci + FC_VW), acc1[i]));
    }
}
