/*
 * Portable direct-convolution row body, included once per dtype by conv2d_direct__generic.c with
 * FC_T (element type) and FC_CONV2D_DIRECT_ROW (function name) defined. Contract:
 * fastconv_kernels.h. For each kernel offset the range of output columns whose input column lies
 * inside the image is computed up front, so the innermost loop has no bounds checks and, at unit
 * stride, reads x contiguously and vectorises.
 */
void FC_CONV2D_DIRECT_ROW(const FC_T *restrict x, const FC_T *restrict w, FC_T *restrict y,
                          ptrdiff_t kb, ptrdiff_t y_plane_stride,
                          ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                          ptrdiff_t FH, ptrdiff_t FW, ptrdiff_t WO, ptrdiff_t ho,
                          ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                          ptrdiff_t DH, ptrdiff_t DW)
{
    const ptrdiff_t filter_size = C * FH * FW;
    for (ptrdiff_t c = 0; c < C; c++) {
        for (ptrdiff_t fh = 0; fh < FH; fh++) {
            const ptrdiff_t hi = ho * SH + fh * DH - PH;
            if (hi < 0 || hi >= H)
                continue;
            const FC_T *x_row = x + (c * H + hi) * W;
            for (ptrdiff_t fw = 0; fw < FW; fw++) {
                /* Output columns wo with 0 <= wo*SW + fw*DW - PW < W. */
                const ptrdiff_t shift = fw * DW - PW;
                ptrdiff_t wo_begin = shift >= 0 ? 0 : (-shift + SW - 1) / SW;
                ptrdiff_t wo_end = W - shift <= 0 ? 0 : (W - shift + SW - 1) / SW;
                if (wo_end > WO)
                    wo_end = WO;
                if (wo_begin >= wo_end)
                    continue;
                const FC_T *w_tap = w + (c * FH + fh) * FW + fw;
                /* Four filters per pass over the row: each x value loaded once feeds four FMAs. */
                ptrdiff_t k = 0;
                for (; k + 4 <= kb; k += 4) {
                    const FC_T w0 = w_tap[k * filter_size];
                    const FC_T w1 = w_tap[(k + 1) * filter_size];
                    const FC_T w2 = w_tap[(k + 2) * filter_size];
                    const FC_T w3 = w_tap[(k + 3) * filter_size];
                    FC_T *y0 = y + k * y_plane_stride;
                    FC_T *y1 = y0 + y_plane_stride;
                    FC_T *y2 = y1 + y_plane_stride;
                    FC_T *y3 = y2 + y_plane_stride;
                    for (ptrdiff_t wo = wo_begin; wo < wo_end; wo++) {
                        const FC_T xv = x_row[wo * SW + shift];
                        y0[wo] += w0 * xv;
                        y1[wo] += w1 * xv;
                        y2[wo] += w2 * xv;
                        y3[wo] += w3 * xv;
                    }
                }
                for (; k < kb; k++) {
                    const FC_T wk = w_tap[k * filter_size];
                    FC_T *yk = y + k * y_plane_stride;
                    for (ptrdiff_t wo = wo_begin; wo < wo_end; wo++)
                        yk[wo] += wk * x_row[wo * SW + shift];
                }
            }
        }
    }
}
