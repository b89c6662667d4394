/*
 * Max-pooling body for one output row, included by maxpool2d_row__<isa>.c once per dtype with
 * FC_T (element type) and FC_MAXPOOL2D_ROW (function name) defined; each including file is
 * compiled with its ISA's flags so the compiler vectorises the width loops for that ISA.
 * Contract: fastconv_kernels.h.
 *
 * PyTorch's rule, tap by tap in row-major window order: a value replaces the running maximum when
 * it is greater or when it is NaN. So ties keep the first maximum, a NaN beats every number and a
 * later NaN replaces an earlier one, and padding (never visited) never wins. Written as compare +
 * select on whole rows, since SIMD max instructions drop NaN.
 */
#ifndef FC_MAXPOOL2D_TAP
#define FC_MAXPOOL2D_TAP FC_CONCAT(FC_MAXPOOL2D_ROW, _tap)
#define FC_MAXPOOL2D_TAP_IS_GENERIC

/* One tap over the output columns [wo_begin, wo_end): x_row[wo*SW + shift] against y[wo]. An
 * including file may define FC_MAXPOOL2D_TAP as its own vector version instead. */
static inline void FC_MAXPOOL2D_TAP(
    const FC_T *restrict x_row, FC_T *restrict y, int64_t *restrict indices, ptrdiff_t wo_begin,
    ptrdiff_t wo_end, ptrdiff_t SW, ptrdiff_t shift, int64_t base)
{
    if (indices) {
        for (ptrdiff_t wo = wo_begin; wo < wo_end; wo++) {
            const FC_T v = x_row[wo * SW + shift];
            const int take = (v > y[wo]) | (v != v);
            y[wo] = take ? v : y[wo];
            indices[wo] = take ? base + (int64_t)(wo * SW) : indices[wo];
        }
    } else {
        for (ptrdiff_t wo = wo_begin; wo < wo_end; wo++) {
            const FC_T v = x_row[wo * SW + shift];
            const int take = (v > y[wo]) | (v != v);
            y[wo] = take ? v : y[wo];
        }
    }
}
#endif

/* One output row ho. */
static inline void FC_CONCAT(FC_MAXPOOL2D_ROW, _one)(
    const FC_T *restrict x, FC_T *restrict y, int64_t *restrict indices, ptrdiff_t H, ptrdiff_t W,
    ptrdiff_t WO, ptrdiff_t ho, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
    ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW)
{
    /* First window row inside the image: PyTorch's starting index for all-(-inf) windows. */
    ptrdiff_t h_first = ho * SH - PH;
    if (h_first < 0)
        h_first += (-h_first + DH - 1) / DH * DH;
    for (ptrdiff_t wo = 0; wo < WO; wo++) {
        y[wo] = -(FC_T)INFINITY;
        if (indices) {
            ptrdiff_t w_first = wo * SW - PW;
            if (w_first < 0)
                w_first += (-w_first + DW - 1) / DW * DW;
            indices[wo] = (int64_t)(h_first * W + w_first);
        }
    }
    /* Only the taps inside the image: a window may be far larger than the image (a kernel of
     * 2**40 over a 1x1 plane), and the work must be bounded by the arrays, not the parameters. */
    const ptrdiff_t top = ho * SH - PH;
    ptrdiff_t kh_begin = top >= 0 ? 0 : (-top + DH - 1) / DH;
    ptrdiff_t kh_end = H - top <= 0 ? 0 : (H - top + DH - 1) / DH;
    if (kh_end > KH)
        kh_end = KH;
    /* Columns: a tap reaches the image for some output only if the last output's position
     * (WO-1)*SW + kw*DW - PW is >= 0 and the first's, kw*DW - PW, is <= W-1. */
    const ptrdiff_t reach = PW - (WO - 1) * SW;
    const ptrdiff_t kw_begin = reach <= 0 ? 0 : (reach + DW - 1) / DW;
    const ptrdiff_t kw_last = (W - 1 + PW) / DW + 1;
    const ptrdiff_t kw_end = kw_last < KW ? kw_last : KW;
    for (ptrdiff_t kh = kh_begin; kh < kh_end; kh++) {
        const ptrdiff_t hi = top + kh * DH;
        const FC_T *x_row = x + hi * W;
        for (ptrdiff_t kw = kw_begin; kw < kw_end; kw++) {
            /* Output columns wo with 0 <= wo*SW + shift < W. */
            const ptrdiff_t shift = kw * DW - PW;
            const ptrdiff_t wo_begin = shift >= 0 ? 0 : (-shift + SW - 1) / SW;
            ptrdiff_t wo_end = W - shift <= 0 ? 0 : (W - shift + SW - 1) / SW;
            if (wo_end > WO)
                wo_end = WO;
            FC_MAXPOOL2D_TAP(x_row, y, indices, wo_begin, wo_end, SW, shift,
                             (int64_t)(hi * W + shift));
        }
    }
}

void FC_MAXPOOL2D_ROW(const FC_T *restrict x, FC_T *restrict y, int64_t *restrict indices,
                      ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho, ptrdiff_t rows,
                      ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                      ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW)
{
    for (ptrdiff_t r = 0; r < rows; r++)
        FC_CONCAT(FC_MAXPOOL2D_ROW, _one)(x, y + r * WO, indices ? indices + r * WO : NULL, H, W,
                                          WO, ho + r, KH, KW, SH, SW, PH, PW, DH, DW);
}

#undef FC_MAXPOOL2D_TAP
#ifdef FC_MAXPOOL2D_TAP_IS_GENERIC
#undef FC_MAXPOOL2D_TAP_IS_GENERIC
#endif
