/*
 * Portable direct-convolution register tile body, included once per dtype by
 * conv2d_direct_tile__generic.c with FC_T, FC_KT (filters), FC_VW (lanes per vector) and
 * FC_DIRECT_TILE (function name) defined. Contract: fastconv_kernels.h. Fixed-size accumulator
 * arrays with unrolled loops, so the compiler keeps them in (baseline) vector registers.
 */
void FC_DIRECT_TILE(ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *x0, const FC_T *x1,
                    const FC_T *w, FC_T *y0, FC_T *y1, ptrdiff_t k_stride, ptrdiff_t kt,
                    unsigned lanes0, unsigned lanes1)
{
    FC_T acc0[FC_KT][FC_VW], acc1[FC_KT][FC_VW];
#pragma GCC unroll 16
    for (int k = 0; k < FC_KT; k++)
#pragma GCC unroll 16
        for (int l = 0; l < FC_VW; l++)
            acc0[k][l] = acc1[k][l] = 0;
    for (ptrdiff_t tap = 0; tap < taps; tap++) {
        const FC_T *in0 = x0 + tap_offset[tap], *in1 = x1 + tap_offset[tap];
        const FC_T *filters = w + tap * FC_KT;
#pragma GCC unroll 16
        for (int k = 0; k < FC_KT; k++)
#pragma GCC unroll 16
            for (int l = 0; l < FC_VW; l++) {
                acc0[k][l] += filters[k] * in0[l];
                acc1[k][l] += filters[k] * in1[l];
            }
    }
    for (int k = 0; k < FC_KT && k < kt; k++)
        for (int l = 0, n0 = 0, n1 = 0; l < FC_VW; l++) {
            if (lanes0 >> l & 1u)
                y0[k * k_stride + n0++] += acc0[k][l];
            if (lanes1 >> l & 1u)
                y1[k * k_stride + n1++] += acc1[k][l];
        }
}
