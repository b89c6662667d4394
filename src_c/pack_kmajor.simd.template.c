/*
 * Body of the SIMD k-major GEMM packs (contract: fastconv_kernels.h), included once per dtype
 * by pack_kmajor__<isa>.c after simd_vector__<isa>.h, with FC_PACK_KMAJOR (function name),
 * FC_TRANSPOSE (an in-register FC_VW x FC_VW transpose) and FC_STORE_FIRST(dst, v, n) (the
 * first n lanes of v, without masked stores) defined. Blocks of FC_VW rows x FC_VW taps are
 * loaded, transposed and stored as panel rows, instead of one scalar store per element.
 */
void FC_PACK_KMAJOR(const FC_T *src, ptrdiff_t row_stride, ptrdiff_t rows, ptrdiff_t kc,
                    ptrdiff_t panel, FC_T *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += FC_VW) {
        const ptrdiff_t width = panel - i0 < FC_VW ? panel - i0 : FC_VW;   /* lanes stored */
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < FC_VW ? rows - i0 : FC_VW);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += FC_VW) {
            const ptrdiff_t columns = kc - p0 < FC_VW ? kc - p0 : FC_VW;
            const FC_MASK column_lanes = FC_MASK_FIRST(columns);
            FC_VEC r[FC_VW];
            for (int i = 0; i < FC_VW; i++) {
                if (i >= present)
                    r[i] = FC_VZERO();
                else if (columns == FC_VW)
                    r[i] = FC_VLOADU(src + (i0 + i) * row_stride + p0);
                else
                    r[i] = FC_VLOADU_MASKZ(column_lanes, src + (i0 + i) * row_stride + p0);
            }
            FC_TRANSPOSE(r);
            for (int q = 0; q < columns; q++)
                FC_STORE_FIRST(dst + (p0 + q) * panel + i0, r[q], width);
        }
    }
}
