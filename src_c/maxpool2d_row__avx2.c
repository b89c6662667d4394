/*
 * Max-pooling of output rows (float and double), compiled with the avx2 flags. Floats at
 * column stride 1 or 2 have their own rows below; the rest take the body in
 * maxpool2d_row.template.c. Contract: fastconv_kernels.h.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "even_columns__avx2.h"
#include "fastconv_kernels.h"

/* Any float rows, by the template (the float rows below call it for other strides). */
static void fc_smaxpool2d_row_any_window__avx2(
    const float *x, float *y, int64_t *indices, ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO,
    ptrdiff_t ho, ptrdiff_t rows, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW,
    ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW);

#define FC_T float
#define FC_MAXPOOL2D_ROW fc_smaxpool2d_row_any_window__avx2
#include "maxpool2d_row.template.c"
#undef FC_T
#undef FC_MAXPOOL2D_ROW

#define FC_T double
#define FC_MAXPOOL2D_ROW fc_dmaxpool2d_row__avx2
#include "maxpool2d_row.template.c"
#undef FC_T
#undef FC_MAXPOOL2D_ROW

/* Take v where it is greater than best or NaN (PyTorch's rule), with its indices. */
#define FC_TAKE(v, at)                                                                          \
    do {                                                                                        \
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),                   \
                                         _mm256_cmp_ps(v, v, _CMP_UNORD_Q));                    \
        best = _mm256_blendv_ps(best, v, take);                                                 \
        if (indices) {                                                                          \
            const __m256i take_i = _mm256_castps_si256(take);                                   \
            const __m256d take_lo = _mm256_castsi256_pd(                                        \
                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(take_i)));                         \
            const __m256d take_hi = _mm256_castsi256_pd(                                        \
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256(take_i, 1)));                    \
            const __m256i at_lo = _mm256_add_epi64(_mm256_set1_epi64x(at), lane_step);          \
            const __m256i at_hi = _mm256_add_epi64(at_lo, half_step);                           \
            best_lo = _mm256_castpd_si256(_mm256_blendv_pd(                                     \
                _mm256_castsi256_pd(best_lo), _mm256_castsi256_pd(at_lo), take_lo));            \
            best_hi = _mm256_castpd_si256(_mm256_blendv_pd(                                     \
                _mm256_castsi256_pd(best_hi), _mm256_castsi256_pd(at_hi), take_hi));            \
        }                                                                                       \
    } while (0)

/* a / b for a >= 0, without a division for the usual b of 1 or 2: on cifar_pool's 16-output
 * rows the divisions took 11% of the row function (perf). */
static inline ptrdiff_t divide(ptrdiff_t a, ptrdiff_t b)
{
    return b == 1 ? a : b == 2 ? a >> 1 : a / b;
}

/* Prefetch the lines of n floats from p: the window rows of the next output row. */
static inline void prefetch_floats(const float *p, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i += 64 / sizeof(float))
        __builtin_prefetch(p + i);
}

/*
 * Outputs wo, wo + 8, ... (while wo <= last) of a 2x2-style row without indices, from its one
 * or two window rows (row0, row1 = row0 for one; both already offset by -PW). Returns the wo it
 * stopped at: past last, or a vector with a NaN among its taps, left to the exact loop.
 * vmaxps(a, b) is a > b ? a : b, so taking the later tap as a and the earlier as b keeps the
 * first of equal values (-0.0 before 0.0), and without NaNs the result is the exact loop's. The
 * pairs are reduced before the one lane permute (max is lane-wise). With the exact loop's
 * compare, NaN test, or and blend per tap, one after another, cifar_pool without indices took
 * 1.15x ORT's time at one thread; with this loop and the plain rows below, 0.56x (`python -m
 * fastconv bench --cases cifar_pool --compare onnxruntime`; asv MaxPool2d.time_forward across
 * commit 1c25a96).
 */
static inline ptrdiff_t pairs_without_indices(const float *row0, const float *row1, float *y,
                                              ptrdiff_t wo, ptrdiff_t last)
{
    for (; wo <= last; wo += 8) {
        const __m256 lo0 = _mm256_loadu_ps(row0 + 2 * wo);
        const __m256 hi0 = _mm256_loadu_ps(row0 + 2 * wo + 8);
        const __m256 lo1 = _mm256_loadu_ps(row1 + 2 * wo);
        const __m256 hi1 = _mm256_loadu_ps(row1 + 2 * wo + 8);
        const __m256 even0 = _mm256_shuffle_ps(lo0, hi0, 0x88);
        const __m256 odd0 = _mm256_shuffle_ps(lo0, hi0, 0xDD);
        const __m256 even1 = _mm256_shuffle_ps(lo1, hi1, 0x88);
        const __m256 odd1 = _mm256_shuffle_ps(lo1, hi1, 0xDD);
        const __m256 best = _mm256_max_ps(_mm256_max_ps(odd1, even1), _mm256_max_ps(odd0, even0));
        const __m256 nan_seen = _mm256_or_ps(_mm256_cmp_ps(even0, odd0, _CMP_UNORD_Q),
                                             _mm256_cmp_ps(even1, odd1, _CMP_UNORD_Q));
        if (_mm256_movemask_ps(nan_seen))
            break;
        _mm256_storeu_ps(y + wo,
                         _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), 0xD8)));
    }
    return wo;
}

/*
 * A float row at column stride 1 or 2: the outputs whose every window column lies inside the
 * row (and whose 8-output loads stay inside it) run 8 at a time, their maxima and indices kept
 * in registers over all the window's taps; the few at the edges run one by one. Same rule and
 * row-major tap order as the template: a value is taken when greater or NaN, and an output
 * that takes none reports its window's first position inside the image. Left to the compiler,
 * the template's tap-by-tap loops ran resnet_pool3s2's forward with indices at 0.28-0.30x
 * PyTorch's time, short of the 5x target the AVX-512 path meets.
 */
static inline void row_stride_1_or_2(const float *x, float *y, int64_t *indices, ptrdiff_t H,
                                     ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho, ptrdiff_t KH,
                                     ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH,
                                     ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW)
{
    /* Window rows inside the image, and the first of them (as in the template). */
    const ptrdiff_t top = ho * SH - PH;
    const ptrdiff_t kh_begin = top >= 0 ? 0 : divide(-top + DH - 1, DH);
    ptrdiff_t kh_end = H - top <= 0 ? 0 : divide(H - top + DH - 1, DH);
    if (kh_end > KH)
        kh_end = KH;
    const ptrdiff_t h_first = top + kh_begin * DH;
    /* Vectors of 8 outputs start at wo_lo .. wo_vec_last: their windows' columns all lie inside
     * the row (the last one read is wo*SW + 7*SW + (KW-1)*DW - PW). */
    const ptrdiff_t reach = (KW - 1) * DW - PW;
    const ptrdiff_t wo_lo = divide(PW + SW - 1, SW);
    const ptrdiff_t room = W - 1 - 7 * SW - reach;
    const ptrdiff_t wo_vec_last = room < 0 ? -1 : divide(room, SW);
    /* 2x2-style rows: columns wo*2 and wo*2+1 come from the same 16 loaded elements, all of
     * them read (the second tap's last column is the 16th). */
    const int pairs = SW == 2 && KW == 2 && DW == 1;
    /* The next output row's window rows, prefetched whole: the vectors below read their
     * window rows side by side, streams a row apart that the hardware prefetcher left waiting
     * on memory (vgg_pool1, 51 MB in, without indices: 6 GB/s without this, 11-15 with it;
     * the template's tap-by-tap passes read them one after the other; `python -m fastconv
     * bench --cases vgg_pool1` prints the GB/s). */
    const ptrdiff_t next_top = top + SH;
    for (ptrdiff_t kh = next_top >= 0 ? 0 : divide(-next_top + DH - 1, DH);
         kh < KH && next_top + kh * DH < H; kh++)
        prefetch_floats(x + (next_top + kh * DH) * W, W);
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i lane_step = _mm256_mul_epi32(lane, _mm256_set1_epi64x(SW));
    const __m256i half_step = _mm256_set1_epi64x(4 * SW);
    ptrdiff_t wo = 0;
    while (wo < WO) {
        /* A row's last vector may overlap the one before it, recomputing the same outputs. */
        if (wo >= wo_lo && WO - wo < 8 && WO - 8 >= wo_lo && WO - 8 <= wo_vec_last)
            wo = WO - 8;
        if (wo >= wo_lo && wo + 8 <= WO && wo <= wo_vec_last) {
            if (pairs && !indices && (kh_end - kh_begin == 1 || kh_end - kh_begin == 2)) {
                const float *row0 = x + h_first * W - PW;
                const float *row1 = kh_end - kh_begin == 2 ? row0 + DH * W : row0;
                const ptrdiff_t last = wo_vec_last < WO - 8 ? wo_vec_last : WO - 8;
                const ptrdiff_t stop = pairs_without_indices(row0, row1, y, wo, last);
                if (stop != wo) {
                    wo = stop;
                    continue;
                }
            }
            __m256 best = _mm256_set1_ps(-INFINITY);
            __m256i best_lo = _mm256_add_epi64(_mm256_set1_epi64x(h_first * W + wo * SW - PW),
                                               lane_step);
            __m256i best_hi = _mm256_add_epi64(best_lo, half_step);
            for (ptrdiff_t kh = kh_begin; kh < kh_end; kh++) {
                const ptrdiff_t hi = top + kh * DH;
                const ptrdiff_t row_at = hi * W + wo * SW - PW;
                if (pairs) {
                    /* 2 columns at stride 2 (2x2 windows): one pair of loads serves both taps. */
                    const __m256 lo = _mm256_loadu_ps(x + row_at);
                    const __m256 hi_half = _mm256_loadu_ps(x + row_at + 8);
                    const __m256 v0 = fc_avx2_even_floats(lo, hi_half, 0);
                    const __m256 v1 = fc_avx2_even_floats(lo, hi_half, 1);
                    FC_TAKE(v0, row_at);
                    FC_TAKE(v1, row_at + 1);
                    continue;
                }
                for (ptrdiff_t kw = 0; kw < KW; kw++) {
                    const ptrdiff_t at = row_at + kw * DW;
                    /* At stride 2 the 8 outputs read 15 elements; the 16th may lie past x. */
                    const __m256 v = SW == 1 ? _mm256_loadu_ps(x + at)
                                             : fc_avx2_load_even_floats(x + at);
                    FC_TAKE(v, at);
                }
            }
            _mm256_storeu_ps(y + wo, best);
            if (indices) {
                _mm256_storeu_si256((__m256i *)(indices + wo), best_lo);
                _mm256_storeu_si256((__m256i *)(indices + wo + 4), best_hi);
            }
            wo += 8;
            continue;
        }
        /* One output at an edge: its window's columns inside the row, in order. */
        ptrdiff_t w_first = wo * SW - PW;
        if (w_first < 0)
            w_first += divide(-w_first + DW - 1, DW) * DW;
        float best = -INFINITY;
        int64_t best_at = (int64_t)(h_first * W + w_first);
        for (ptrdiff_t kh = kh_begin; kh < kh_end; kh++) {
            const ptrdiff_t hi = top + kh * DH;
            for (ptrdiff_t kw = 0; kw < KW; kw++) {
                const ptrdiff_t wi = wo * SW - PW + kw * DW;
                if (wi < 0 || wi >= W)
                    continue;
                const float v = x[hi * W + wi];
                if ((v > best) | (v != v)) {
                    best = v;
                    best_at = (int64_t)(hi * W + wi);
                }
            }
        }
        y[wo] = best;
        if (indices)
            indices[wo] = best_at;
        wo++;
    }
}

void fc_smaxpool2d_row__avx2(const float *x, float *y, int64_t *indices, ptrdiff_t H,
                             ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho, ptrdiff_t rows, ptrdiff_t KH,
                             ptrdiff_t KW, ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                             ptrdiff_t DH, ptrdiff_t DW)
{
    if (SW != 1 && SW != 2) {
        fc_smaxpool2d_row_any_window__avx2(x, y, indices, H, W, WO, ho, rows, KH, KW, SH, SW, PH,
                                           PW, DH, DW);
        return;
    }
    /* 2x2 stride-2 windows inside the plane (no padding, no ceil_mode overhang), values only:
     * a row is its run of vectors, the last one overlapping when WO is not a multiple of 8,
     * without row_stride_1_or_2's per-row bookkeeping (window rows, vector bounds, the edge
     * loop), which cifar_pool's 16-output rows pay for every two vectors. */
    const int plain_pairs = !indices && KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 &&
                            PW == 0 && DH == 1 && DW == 1 && WO >= 8 && 2 * WO <= W &&
                            2 * (ho + rows) <= H;
    for (ptrdiff_t r = 0; r < rows; r++) {
        if (plain_pairs) {
            const float *row0 = x + 2 * (ho + r) * W;
            if (2 * (ho + r) + 4 <= H)
                prefetch_floats(row0 + 2 * W, 2 * W);
            float *y_row = y + r * WO;
            const ptrdiff_t last = WO - 8;
            if (pairs_without_indices(row0, row0 + W, y_row, 0, last) > last &&
                (WO % 8 == 0 || pairs_without_indices(row0, row0 + W, y_row, last, last) > last))
                continue;
        }
        row_stride_1_or_2(x, y + r * WO, indices ? indices + r * WO : NULL, H, W, WO, ho + r, KH,
                          KW, SH, SW, PH, PW, DH, DW);
    }
}

#undef FC_TAKE
