/*
 * AVX-512 packing of float rows into a k-major GEMM panel: 16 rows x 16 columns at a time are
 * loaded, transposed in registers and stored as 16 panel rows, instead of one scalar store per
 * element (packing took a third of backward-weights' time). Contract: fastconv_kernels.h.
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq.
 */
#include <immintrin.h>

#include "fastconv_kernels.h"
#include "transpose_16x16__avx512.h"

void fc_spack_kmajor__avx512(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                             ptrdiff_t kc, ptrdiff_t panel, float *dst)
{
    for (ptrdiff_t i0 = 0; i0 < panel; i0 += 16) {
        const ptrdiff_t width = panel - i0 < 16 ? panel - i0 : 16;   /* panel lanes stored */
        const ptrdiff_t present = rows - i0 < 0 ? 0 : (rows - i0 < 16 ? rows - i0 : 16);
        const __mmask16 store_mask = (__mmask16)((1u << width) - 1);
        for (ptrdiff_t p0 = 0; p0 < kc; p0 += 16) {
            const ptrdiff_t columns = kc - p0 < 16 ? kc - p0 : 16;
            const __mmask16 load_mask = (__mmask16)((1u << columns) - 1);
            __m512 r[16];
            load_transposed_16x16(src + i0 * row_stride + p0, row_stride, present, load_mask, r);
            for (int q = 0; q < columns; q++)
                _mm512_mask_storeu_ps(dst + (p0 + q) * panel + i0, store_mask, r[q]);
        }
    }
}
