/*
 * Max-pooling of one output row (float and double), compiled with the avx512 flags; the body is
 * maxpool2d_row.template.c. Contract: fastconv_kernels.h.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "fastconv_kernels.h"

/*
 * One tap of a float row, 16 outputs per step for strides 1 and 2 (the compiler, left to itself,
 * loads a stride-2 row one element at a time). Masked loads read only the elements the outputs
 * use, so nothing past the row is touched; PyTorch's rule as in the template: take a value when
 * it is greater or NaN (an unordered self-compare).
 */
static void fc_smaxpool2d_tap__avx512(const float *restrict x_row, float *restrict y,
                                      int64_t *restrict indices, ptrdiff_t wo_begin,
                                      ptrdiff_t wo_end, ptrdiff_t SW, ptrdiff_t shift,
                                      int64_t base)
{
    ptrdiff_t wo = wo_begin;
    if (SW == 1 || SW == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i lane_lo = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        const __m512i step = _mm512_set1_epi64(SW);
        for (; wo < wo_end; wo += 16) {
            const ptrdiff_t n = wo_end - wo < 16 ? wo_end - wo : 16;
            const __mmask16 lanes = (__mmask16)((1u << n) - 1);
            const float *src = x_row + wo * SW + shift;
            __m512 v;
            if (SW == 1) {
                v = _mm512_maskz_loadu_ps(lanes, src);
            } else {
                /* outputs 0..n-1 read src[0], src[2], ..., src[2n-2]: 2n-1 elements */
                const ptrdiff_t used = 2 * n - 1;
                const __mmask16 lo_mask = (__mmask16)(used >= 16 ? 0xFFFFu : (1u << used) - 1);
                const __mmask16 hi_mask = (__mmask16)(used <= 16 ? 0u : (1u << (used - 16)) - 1);
                const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, src);
                const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, src + 16);
                v = _mm512_permutex2var_ps(lo, even, hi);
            }
            const __m512 current = _mm512_maskz_loadu_ps(lanes, y + wo);
            const __mmask16 take = lanes & (_mm512_cmp_ps_mask(v, current, _CMP_GT_OQ) |
                                            _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
            _mm512_mask_storeu_ps(y + wo, take, v);
            if (indices) {
                const __m512i first = _mm512_set1_epi64(base + (int64_t)(wo * SW));
                const __m512i index_lo = _mm512_add_epi64(first, _mm512_mullo_epi64(lane_lo, step));
                const __m512i index_hi = _mm512_add_epi64(
                    index_lo, _mm512_mullo_epi64(_mm512_set1_epi64(8), step));
                _mm512_mask_storeu_epi64(indices + wo, (__mmask8)take, index_lo);
                _mm512_mask_storeu_epi64(indices + wo + 8, (__mmask8)(take >> 8), index_hi);
            }
        }
        return;
    }
    for (; wo < wo_end; wo++) {
        const float v = x_row[wo * SW + shift];
        const int take = (v > y[wo]) | (v != v);
        y[wo] = take ? v : y[wo];
        if (indices && take)
            indices[wo] = base + (int64_t)(wo * SW);
    }
}

/* Any float row, by the template (internal: fc_smaxpool2d_row__avx512 below calls it). */
static void fc_smaxpool2d_row_any_window__avx512(
    const float *x, float *y, int64_t *indices, ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO,
    ptrdiff_t ho, ptrdiff_t rows, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
    ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW);

#define FC_T float
#define FC_MAXPOOL2D_ROW fc_smaxpool2d_row_any_window__avx512
#define FC_MAXPOOL2D_TAP fc_smaxpool2d_tap__avx512
#include "maxpool2d_row.template.c"
#undef FC_T
#undef FC_MAXPOOL2D_ROW

/*
 * A float row whose windows all lie inside the image, at stride 1 or 2: 16 outputs at a time,
 * their running maxima (and indices) kept in registers over all the window's taps, in the same
 * row-major tap order and with the same rule as the template. Tap by tap over the whole row, each
 * tap's masked store of y fed the next tap's masked load, which the CPU cannot forward (asv
 * MaxPool2d.time_forward across commit 889663a: cifar_pool about halved). Returns 0, doing
 * nothing, for any other row.
 */
static int fc_smaxpool2d_row_inside__avx512(const float *x, float *y, int64_t *indices,
                                            ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho,
                                            ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                            ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                            ptrdiff_t DH, ptrdiff_t DW)
{
    const ptrdiff_t top = ho * SH - PH;
    if ((SW != 1 && SW != 2) || PH != 0 || PW != 0 || top + (KH - 1) * DH > H - 1
        || (WO - 1) * SW + (KW - 1) * DW > W - 1)
        return 0;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i lane_step = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                                                 _mm512_set1_epi64(SW));
    const __m512i half_step = _mm512_set1_epi64(8 * SW);
    for (ptrdiff_t wo = 0; wo < WO; wo += 16) {
        const ptrdiff_t n = WO - wo < 16 ? WO - wo : 16;
        const __mmask16 lanes = (__mmask16)((1u << n) - 1);
        const ptrdiff_t used = SW * (n - 1) + 1;
        const __mmask16 lo_mask = (__mmask16)(used >= 16 ? 0xFFFFu : (1u << used) - 1);
        const __mmask16 hi_mask = (__mmask16)(used <= 16 ? 0u : (1u << (used - 16)) - 1);
        __m512 best = _mm512_set1_ps(-INFINITY);
        /* All -inf (or no tap taken): PyTorch reports the window's first position. */
        __m512i best_lo = _mm512_add_epi64(_mm512_set1_epi64(top * W + wo * SW), lane_step);
        __m512i best_hi = _mm512_add_epi64(best_lo, half_step);
        for (ptrdiff_t kh = 0; kh < KH; kh++) {
            const ptrdiff_t hi = top + kh * DH;
            for (ptrdiff_t kw = 0; kw < KW; kw++) {
                const float *src = x + hi * W + wo * SW + kw * DW;
                __m512 v;
                if (SW == 1)
                    v = _mm512_maskz_loadu_ps(lanes, src);
                else
                    v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo_mask, src), even,
                                               _mm512_maskz_loadu_ps(hi_mask, src + 16));
                const __mmask16 take = lanes & (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                                                _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
                best = _mm512_mask_mov_ps(best, take, v);
                if (indices) {
                    const __m512i at = _mm512_add_epi64(
                        _mm512_set1_epi64(hi * W + wo * SW + kw * DW), lane_step);
                    best_lo = _mm512_mask_mov_epi64(best_lo, (__mmask8)take, at);
                    best_hi = _mm512_mask_mov_epi64(best_hi, (__mmask8)(take >> 8),
                                                    _mm512_add_epi64(at, half_step));
                }
            }
        }
        _mm512_mask_storeu_ps(y + wo, lanes, best);
        if (indices) {
            _mm512_mask_storeu_epi64(indices + wo, (__mmask8)lanes, best_lo);
            _mm512_mask_storeu_epi64(indices + wo + 8, (__mmask8)(lanes >> 8), best_hi);
        }
    }
    return 1;
}

/*
 * The commonest window, 2x2 at stride 2 without padding or dilation: each pair of input rows is
 * loaded once (two vectors per 16 outputs) and split into its even and odd columns, so the four
 * taps cost two loads and two permutes per row instead of two of each per tap, with none of the
 * general path's per-tap bookkeeping (asv MaxPool2d.time_forward across commit 5d37f08: cifar_pool
 * about 0.7x). Same tap order and rule. Returns 0, doing nothing, for any other row.
 */
static int fc_smaxpool2d_row_2x2s2__avx512(const float *x, float *y, int64_t *indices,
                                           ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho,
                                           ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                           ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                           ptrdiff_t DH, ptrdiff_t DW)
{
    if (KH != 2 || KW != 2 || SH != 2 || SW != 2 || PH != 0 || PW != 0 || DH != 1 || DW != 1
        || 2 * ho + 1 > H - 1 || 2 * WO > W)
        return 0;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i lane_step = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const float *rows[2] = {x + 2 * ho * W, x + (2 * ho + 1) * W};
    for (ptrdiff_t wo = 0; wo < WO; wo += 16) {
        const ptrdiff_t n = WO - wo < 16 ? WO - wo : 16;
        const __mmask16 lanes = (__mmask16)((1u << n) - 1);
        /* Outputs 0..n-1 read 2n elements from column 2*wo. */
        const __mmask16 lo_mask = (__mmask16)(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1);
        const __mmask16 hi_mask = (__mmask16)(n <= 8 ? 0u : (1u << (2 * n - 16)) - 1);
        __m512 best = _mm512_setzero_ps();
        __m512i best_lo = _mm512_setzero_si512(), best_hi = _mm512_setzero_si512();
        for (int r = 0; r < 2; r++) {
            const float *src = rows[r] + 2 * wo;
            const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, src);
            const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, src + 16);
            for (int kw = 0; kw < 2; kw++) {
                const __m512 v = _mm512_permutex2var_ps(lo, kw ? odd : even, hi);
                /* The first tap always starts the maximum (it is the window's first position,
                 * PyTorch's index for an all -inf window too). */
                const __mmask16 take = (r == 0 && kw == 0)
                    ? lanes
                    : lanes & (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ)
                               | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
                best = _mm512_mask_mov_ps(best, take, v);
                if (indices) {
                    const __m512i at = _mm512_add_epi64(
                        _mm512_set1_epi64((2 * ho + r) * W + 2 * wo + kw), lane_step);
                    best_lo = _mm512_mask_mov_epi64(best_lo, (__mmask8)take, at);
                    best_hi = _mm512_mask_mov_epi64(best_hi, (__mmask8)(take >> 8),
                                                    _mm512_add_epi64(at, _mm512_set1_epi64(16)));
                }
            }
        }
        _mm512_mask_storeu_ps(y + wo, lanes, best);
        if (indices) {
            _mm512_mask_storeu_epi64(indices + wo, (__mmask8)lanes, best_lo);
            _mm512_mask_storeu_epi64(indices + wo + 8, (__mmask8)(lanes >> 8), best_hi);
        }
    }
    return 1;
}

void fc_smaxpool2d_row__avx512(const float *x, float *y, int64_t *indices, ptrdiff_t H,
                               ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho, ptrdiff_t rows,
                               ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
                               ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW)
{
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *y_row = y + r * WO;
        int64_t *index_row = indices ? indices + r * WO : NULL;
        if (fc_smaxpool2d_row_2x2s2__avx512(x, y_row, index_row, H, W, WO, ho + r, KH, KW, SH,
                                            SW, PH, PW, DH, DW))
            continue;
        if (!fc_smaxpool2d_row_inside__avx512(x, y_row, index_row, H, W, WO, ho + r, KH, KW, SH,
                                              SW, PH, PW, DH, DW))
            fc_smaxpool2d_row_any_window__avx512(x, y_row, index_row, H, W, WO, ho + r, 1, KH, KW,
                                                 SH, SW, PH, PW, DH, DW);
    }
}

#define FC_T double
#define FC_MAXPOOL2D_ROW fc_dmaxpool2d_row__avx512
#include "maxpool2d_row.template.c"
