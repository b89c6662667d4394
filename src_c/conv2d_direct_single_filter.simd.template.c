/*
 * Body of the single-filter direct-convolution kernel for one ISA and dtype, included by
 * conv2d_direct_single_filter__<isa>.c after simd_vector__<isa>.h with FC_SINGLE_FILTER (function
 * name) defined. Contract: fastconv_kernels.h.
 *
 * Layers with a few filters per group (depthwise ones: one) leave a register tile of 14-32
 * filters mostly empty, so this kernel has one filter and pixels along the lanes: per tap one
 * broadcast filter value, one vector load of the band per output vector, one FMA. Four output
 * vectors share each broadcast, so four independent sums hide the FMA latency.
 */
void FC_SINGLE_FILTER(ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *x, const FC_T *w,
                      FC_T *y, ptrdiff_t rows, ptrdiff_t row_vectors, ptrdiff_t x_row_stride,
                      ptrdiff_t y_row_stride, int accumulate)
{
    enum { GROUP = 4 };
    const ptrdiff_t items = rows * row_vectors;
    ptrdiff_t i = 0;
    for (; i + GROUP <= items; i += GROUP) {
        const FC_T *src[GROUP];
        FC_T *dst[GROUP];
        FC_VEC acc[GROUP];
#pragma GCC unroll 4
        for (int j = 0; j < GROUP; j++) {
            const ptrdiff_t r = (i + j) / row_vectors, v = (i + j) % row_vectors;
            src[j] = x + r * x_row_stride + v * FC_VW;
            dst[j] = y + r * y_row_stride + v * FC_VW;
            acc[j] = FC_VZERO();
        }
        for (ptrdiff_t t = 0; t < taps; t++) {
            const FC_VEC wt = FC_VBROADCAST(w + t);
            const ptrdiff_t offset = tap_offset[t];
#pragma GCC unroll 4
            for (int j = 0; j < GROUP; j++)
                acc[j] = FC_VFMADD(wt, FC_VLOADU(src[j] + offset), acc[j]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < GROUP; j++)
            FC_VSTOREU(dst[j], accumulate ? FC_VADD(FC_VLOADU(dst[j]), acc[j]) : acc[j]);
    }
    for (; i < items; i++) {
        const ptrdiff_t r = i / row_vectors, v = i % row_vectors;
        const FC_T *src = x + r * x_row_stride + v * FC_VW;
        FC_T *dst = y + r * y_row_stride + v * FC_VW;
        FC_VEC acc = FC_VZERO();
        for (ptrdiff_t t = 0; t < taps; t++)
            acc = FC_VFMADD(FC_VBROADCAST(w + t), FC_VLOADU(src + tap_offset[t]), acc);
        FC_VSTOREU(dst, accumulate ? FC_VADD(FC_VLOADU(dst), acc) : acc);
    }
}
