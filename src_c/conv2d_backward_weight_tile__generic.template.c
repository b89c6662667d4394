/*
 * Portable backward-weights register tile body: FC_KT filters x FC_TT taps, FC_VW lanes per
 * step. Included once per dtype by conv2d_backward_weight_tile__generic.c with FC_T, FC_KT,
 * FC_TT, FC_VW and FC_BACKWARD_WEIGHT_TILE defined. Contract: fastconv_kernels.h. A partial last
 * vector multiplies zeros in both operands, so input values no output pixel reads never reach dw.
 */
void FC_BACKWARD_WEIGHT_TILE(ptrdiff_t rows, ptrdiff_t WO, const FC_T *dy, ptrdiff_t dy_k_stride,
                             ptrdiff_t dy_row_stride, const FC_T *x, ptrdiff_t x_row_stride,
                             const ptrdiff_t *tap_offset, FC_T *dw, ptrdiff_t dw_k_stride,
                             ptrdiff_t kt, ptrdiff_t tt)
{
    enum { KT = FC_KT, TT = FC_TT };
    FC_T acc[KT][TT][FC_VW];
    ptrdiff_t offset[TT];
    for (int t = 0; t < TT; t++)
        offset[t] = tap_offset[t < tt ? t : 0];
#pragma GCC unroll 4
    for (int k = 0; k < KT; k++)
#pragma GCC unroll 4
        for (int t = 0; t < TT; t++)
#pragma GCC unroll 16
            for (int l = 0; l < FC_VW; l++)
                acc[k][t][l] = 0;
    for (ptrdiff_t r = 0; r < rows; r++) {
        const FC_T *dy_row = dy + r * dy_row_stride, *x_row = x + r * x_row_stride;
        for (ptrdiff_t wo = 0; wo < WO; wo += FC_VW) {
            const ptrdiff_t lanes = WO - wo < FC_VW ? WO - wo : FC_VW;
            FC_T grad[KT][FC_VW], in[TT][FC_VW];
#pragma GCC unroll 4
            for (int k = 0; k < KT; k++)
#pragma GCC unroll 16
                for (int l = 0; l < FC_VW; l++)
                    grad[k][l] = k < kt && l < lanes ? dy_row[k * dy_k_stride + wo + l] : 0;
#pragma GCC unroll 4
            for (int t = 0; t < TT; t++)
#pragma GCC unroll 16
                for (int l = 0; l < FC_VW; l++)
                    in[t][l] = l < lanes ? x_row[offset[t] + wo + l] : 0;
#pragma GCC unroll 4
            for (int k = 0; k < KT; k++)
#pragma GCC unroll 4
                for (int t = 0; t < TT; t++)
#pragma GCC unroll 16
                    for (int l = 0; l < FC_VW; l++)
                        acc[k][t][l] += grad[k][l] * in[t][l];
        }
    }
    for (int k = 0; k < KT && k < kt; k++)
        for (int t = 0; t < TT && t < tt; t++) {
            FC_T total = 0;
            for (int l = 0; l < FC_VW; l++)
                total += acc[k][t][l];
            dw[k * dw_k_stride + t] += total;
        }
}
