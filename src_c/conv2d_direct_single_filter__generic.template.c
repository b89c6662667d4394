/*
 * Portable single-filter direct-convolution body, included once per dtype by
 * conv2d_direct_single_filter__generic.c with FC_T, FC_VW (pixels per output vector) and
 * FC_SINGLE_FILTER (function name) defined. Contract: fastconv_kernels.h. The same loops as the
 * SIMD body, on fixed-size arrays the compiler keeps in baseline vector registers.
 */
void FC_SINGLE_FILTER(ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *x, const FC_T *w,
                      FC_T *y, ptrdiff_t rows, ptrdiff_t row_vectors, ptrdiff_t x_row_stride,
                      ptrdiff_t y_row_stride, int accumulate)
{
    const ptrdiff_t items = rows * row_vectors;
    for (ptrdiff_t i = 0; i < items; i++) {
        const ptrdiff_t r = i / row_vectors, v = i % row_vectors;
        const FC_T *src = x + r * x_row_stride + v * FC_VW;
        FC_T *dst = y + r * y_row_stride + v * FC_VW;
        FC_T acc[FC_VW];
#pragma GCC unroll 8
        for (int l = 0; l < FC_VW; l++)
            acc[l] = 0;
        for (ptrdiff_t t = 0; t < taps; t++) {
            const FC_T wt = w[t];
            const FC_T *pixels = src + tap_offset[t];
#pragma GCC unroll 8
            for (int l = 0; l < FC_VW; l++)
                acc[l] += wt * pixels[l];
        }
#pragma GCC unroll 8
        for (int l = 0; l < FC_VW; l++)
            dst[l] = accumulate ? dst[l] + acc[l] : acc[l];
    }
}
