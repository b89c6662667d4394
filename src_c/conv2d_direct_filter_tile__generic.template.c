/*
 * Portable filter-vector direct-convolution tile body, included once per dtype by
 * conv2d_direct_filter_tile__generic.c with FC_T, FC_MR (pixels), FC_NR (filters) and
 * FC_FILTER_TILE (function name) defined. Contract: fastconv_kernels.h. Fixed-size accumulators
 * with unrolled loops, so the compiler keeps them in (baseline) vector registers.
 */
void FC_FILTER_TILE(ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *x,
                    const ptrdiff_t *pixel_offset, const FC_T *w, FC_T *c, int accumulate)
{
    const FC_T *pixel[FC_MR];
#pragma GCC unroll 16
    for (int i = 0; i < FC_MR; i++)
        pixel[i] = x + pixel_offset[i];
    FC_T acc[FC_MR][FC_NR];
#pragma GCC unroll 16
    for (int i = 0; i < FC_MR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < FC_NR; j++)
            acc[i][j] = 0;
    for (ptrdiff_t t = 0; t < taps; t++) {
        const ptrdiff_t offset = tap_offset[t];
        const FC_T *filters = w + t * FC_NR;
#pragma GCC unroll 16
        for (int i = 0; i < FC_MR; i++)
#pragma GCC unroll 16
            for (int j = 0; j < FC_NR; j++)
                acc[i][j] += pixel[i][offset] * filters[j];
    }
    for (int i = 0; i < FC_MR; i++)
        for (int j = 0; j < FC_NR; j++)
            c[i * FC_NR + j] = accumulate ? c[i * FC_NR + j] + acc[i][j] : acc[i][j];
}
