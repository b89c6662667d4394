/*
 * Portable filter-vector direct-convolution tiles (float 4 pixels x 16 filters, double 4 x 8)
 * and the store of any ISA's tile into y, the fallback for every CPU. Compiled with the
 * baseline flags only. Contract: fastconv_kernels.h.
 */
#include "fastconv_kernels.h"

#define FC_T float
#define FC_MR 4
#define FC_NR 16
#define FC_FILTER_TILE fc_sconv2d_direct_filter_tile_4x16__generic
#include "conv2d_direct_filter_tile__generic.template.c"
#undef FC_T
#undef FC_MR
#undef FC_NR
#undef FC_FILTER_TILE

#define FC_T double
#define FC_MR 4
#define FC_NR 8
#define FC_FILTER_TILE fc_dconv2d_direct_filter_tile_4x8__generic
#include "conv2d_direct_filter_tile__generic.template.c"
#undef FC_T
#undef FC_MR
#undef FC_NR
#undef FC_FILTER_TILE

#define FC_STORE_FILTER_TILE_BODY                                                             \
    for (ptrdiff_t k = 0; k < kt; k++)                                                        \
        for (ptrdiff_t i = 0; i < pixels; i++)                                                \
            y[k * y_k_stride + i] = c[i * c_stride + k] + (bias ? bias[k] : 0);

void fc_sstore_filter_tile__generic(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                    ptrdiff_t kt, const float *bias, float *y,
                                    ptrdiff_t y_k_stride)
{
    FC_STORE_FILTER_TILE_BODY
}

void fc_dstore_filter_tile__generic(const double *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                    ptrdiff_t kt, const double *bias, double *y,
                                    ptrdiff_t y_k_stride)
{
    FC_STORE_FILTER_TILE_BODY
}
