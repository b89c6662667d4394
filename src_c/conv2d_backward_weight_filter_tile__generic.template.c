/*
 * Portable filter-vector backward-weights tile body, included once per dtype by
 * conv2d_backward_weight_filter_tile__generic.c with FC_T, FC_MR (taps), FC_NR (filters) and
 * FC_BACKWARD_WEIGHT_FILTER_TILE (function name) defined. Contract: fastconv_kernels.h.
 * Fixed-size accumulators with unrolled loops, so the compiler keeps them in (baseline) vector
 * registers.
 */
void FC_BACKWARD_WEIGHT_FILTER_TILE(ptrdiff_t rows, ptrdiff_t WO, const FC_T *x,
                                    ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset,
                                    const FC_T *g, FC_T *c)
{
    FC_T acc[FC_MR][FC_NR];
#pragma GCC unroll 16
    for (int i = 0; i < FC_MR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < FC_NR; j++)
            acc[i][j] = 0;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const FC_T *x_row = x + r * x_row_stride;
        const FC_T *g_row = g + r * WO * FC_NR;
        for (ptrdiff_t wo = 0; wo < WO; wo++) {
            const FC_T *grads = g_row + wo * FC_NR;
#pragma GCC unroll 16
            for (int i = 0; i < FC_MR; i++) {
                const FC_T in = x_row[tap_offset[i] + wo];
#pragma GCC unroll 16
                for (int j = 0; j < FC_NR; j++)
                    acc[i][j] += in * grads[j];
            }
        }
    }
    for (int i = 0; i < FC_MR; i++)
        for (int j = 0; j < FC_NR; j++)
            c[i * FC_NR + j] += acc[i][j];
}
