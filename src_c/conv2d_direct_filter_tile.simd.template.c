/*
 * Filter-vector direct-convolution tile body for one ISA and dtype, included by
 * conv2d_direct_filter_tile__<isa>.c after simd_vector__<isa>.h (the vector type and operations)
 * with FC_MR (pixels), FC_NR (filters: 2 vectors) and FC_FILTER_TILE (function name) defined.
 * Contract: fastconv_kernels.h.
 *
 * Register budget as in the GEMM micro-kernel: MR pixels x 2 filter vectors = 2*MR accumulators
 * + 2 filter vectors + 1 broadcast pixel. Per tap: two vector loads of packed filters, MR pixel
 * broadcasts from one or two cache lines of the band (two rows' lines for a tile that wraps
 * from one output row to the next), 2*MR FMAs. Unlike the pixel-vector tiles, no
 * lane is idle when an output row is not a multiple of the vector width or a layer has 64
 * filters.
 */
/* Taps ahead whose packed filters are prefetched. A layer's filter block is re-read for every
 * tile of its band, from L2 once it outgrows L1 (vgg_conv5_2: 4608 taps x 128 B per block), and
 * the hardware prefetcher alone left the first broadcast of each tap waiting on it: 16 taps ahead
 * (2 KB) measured vgg_conv5_2 forward 54 -> 50 ms and its dx 64 -> 58 ms at T=1 (asv Conv2d and
 * Conv2dBackward across commit 009ebcd). Prefetches past the block's end are hints that never
 * fault. */
#ifndef FC_FILTER_PREFETCH_TAPS
#define FC_FILTER_PREFETCH_TAPS 16
#endif
/* Taps ahead whose band pixels are prefetched: the lines of the first and the last of its MR
 * pixels (all the lines of 14 floats; two of the three 14 doubles can span). A tap's
 * pixels lie a channel or a row away from the last tap's, beyond what the hardware follows, and
 * the band (256 KB to 1 MB) lives in L2: resnet_1x1 forward 4.2 -> 3.8 ms, vgg_conv5_2 51.7 ->
 * 49.2 ms at T=1, the other standard layers within noise (asv Conv2d across commit 926e124).
 * tap_offset is not read past `taps`. 0 turns them off (AVX2: see there). */
#ifndef FC_PIXEL_PREFETCH_TAPS
#define FC_PIXEL_PREFETCH_TAPS 8
#endif

/* The tile's body: `pixel[i]` is where pixel i's taps are read from, at pixel[0] + i when
 * `consecutive` (a compile-time constant in both calls below): one base register then serves
 * all MR broadcasts, where MR base registers would outnumber the general-purpose ones of the
 * 14-pixel AVX-512 tile. */
static inline __attribute__((always_inline)) void FC_CONCAT(FC_FILTER_TILE, _body)(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *const *pixel, const FC_T *w,
    FC_T *c, int accumulate, const int consecutive)
{
    enum { MR = FC_MR, NR = FC_NR };
    FC_VEC acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        acc0[i] = FC_VZERO();
        acc1[i] = FC_VZERO();
    }
    for (ptrdiff_t t = 0; t < taps; t++) {
        const FC_VEC w0 = FC_VLOADU(w + t * NR);
        const FC_VEC w1 = FC_VLOADU(w + t * NR + FC_VW);
        const ptrdiff_t offset = tap_offset[t];
        if (FC_PIXEL_PREFETCH_TAPS > 0) {
            const ptrdiff_t ahead = tap_offset[t + FC_PIXEL_PREFETCH_TAPS < taps
                                                   ? t + FC_PIXEL_PREFETCH_TAPS : taps - 1];
            __builtin_prefetch(pixel[0] + ahead);
            __builtin_prefetch(pixel[consecutive ? 0 : MR - 1] + ahead + (consecutive ? MR - 1 : 0));
        }
        __builtin_prefetch(w + (t + FC_FILTER_PREFETCH_TAPS) * NR);
        if (NR * sizeof(FC_T) > 64)
            __builtin_prefetch(w + (t + FC_FILTER_PREFETCH_TAPS) * NR + 64 / sizeof(FC_T));
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const FC_VEC xi = FC_VBROADCAST(consecutive ? pixel[0] + offset + i
                                                        : pixel[i] + offset);
            acc0[i] = FC_VFMADD(xi, w0, acc0[i]);
            acc1[i] = FC_VFMADD(xi, w1, acc1[i]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        FC_T *ci = c + i * NR;
        if (accumulate) {
            acc0[i] = FC_VADD(FC_VLOADU(ci), acc0[i]);
            acc1[i] = FC_VADD(FC_VLOADU(ci + FC_VW), acc1[i]);
        }
        FC_VSTOREU(ci, acc0[i]);
        FC_VSTOREU(ci + FC_VW, acc1[i]);
    }
}

void FC_FILTER_TILE(ptrdiff_t taps, const ptrdiff_t *tap_offset, const FC_T *x,
                    const ptrdiff_t *pixel_offset, const FC_T *w, FC_T *c, int accumulate)
{
    const FC_T *pixel[FC_MR];
    int consecutive = 1;
    for (int i = 0; i < FC_MR; i++) {
        pixel[i] = x + pixel_offset[i];
        consecutive &= pixel_offset[i] == pixel_offset[0] + i;
    }
    if (consecutive)
        FC_CONCAT(FC_FILTER_TILE, _body)(taps, tap_offset, pixel, w, c, accumulate, 1);
    else
        FC_CONCAT(FC_FILTER_TILE, _body)(taps, tap_offset, pixel, w, c, accumulate, 0);
}
