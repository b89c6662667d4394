/*
 * Body of the filter-streaming GEMM micro-kernels (contract: fastconv_kernels.h), included once per
 * dtype by gemm_ukernel__<isa>.c after simd_vector__<isa>.h, with FC_STREAM_MR (filter rows) and
 * FC_STREAM_UKERNEL (function name) defined. The tile is FC_STREAM_MR rows x 3 vectors of pixels:
 * 8 x 3 = 24 of AVX-512's 32 registers, 4 x 3 = 12 of AVX2's 16, with the 3 pixel vectors and the
 * broadcast beside them. Three vectors rather than two because the rows are the filters, read from
 * memory as they stream in: more rows would mean more streams in flight at once. A last panel
 * of at most two vectors' pixels runs with two or one (`columns`): the FC layer's 36 pixels take
 * 24 + 16 lanes with AVX2, not 48: ours / ORT on fc_as_conv7 at one thread 1.69-1.74 ->
 * 1.31-1.44, at two 1.48 -> 1.20 (each build alternating with ORT in its own processes, as
 * `python -m fastconv bench --cases fc_as_conv7 --compare onnxruntime` times them).
 * b's rows are b_row_stride apart: a packed panel of pixels (FC layers) or an input channel's
 * plane read in place (1x1 layers, whose driver also passes b_prefetch: one line of the next
 * panel per step, since the channels' planes are more streams than the hardware follows). That
 * line goes to L2 only (prefetcht1): fetched into L1 it evicted the current panel's lines
 * (ours / PyTorch on resnet_1x1 at one thread 1.25 -> 1.23, measured like the fetch below).
 * Each step also fetches the NR pixels of the row two steps ahead into L1: after a panel's first
 * call its rows are in L2, a plane apart, a stride the L1 prefetchers do not follow. It took
 * about 3% off resnet_1x1 at one and two threads and left the FC layer as it was (builds with
 * and without it alternating, each timed against PyTorch in its process; asv Conv2dPointwise
 * across the commit that added this paragraph compares the same).
 * FC_STORE_STREAM writes the tile past the caches: a 1x1 layer with 4x more filters than
 * channels (ResNet's expansions) writes 4x more y than it reads x, 8 planes a plane apart per
 * call, more streams than the hardware tracks, so each ordinary store waited on reading its line
 * first (see `_pointwise_panel`).
 * The `unroll` pragmas keep the accumulator arrays in registers (see the GEMM kernels).
 */
#define FC_STREAM_VECTORS FC_CONCAT(FC_STREAM_UKERNEL, _vectors)

/* The tile with NV (1 to 3) pixel vectors; NV is a constant once inlined, so the accumulators
 * stay in registers. */
static inline __attribute__((always_inline)) void FC_STREAM_VECTORS(
    int NV, ptrdiff_t kc, const FC_T *restrict w, ptrdiff_t w_row_stride,
    const FC_T *restrict b, ptrdiff_t b_row_stride, FC_T *restrict c, ptrdiff_t ldc,
    const FC_T *b_prefetch, int accumulate)
{
    enum { MR = FC_STREAM_MR };
    FC_VEC acc[3][MR];
    const FC_T *row[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[v][i] = FC_VZERO();
        row[i] = w + i * w_row_stride;
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const FC_T *b_row = b + p * b_row_stride;
        FC_VEC bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = FC_VLOADU(b_row + v * FC_VW);
        if (b_prefetch)
            __builtin_prefetch(b_prefetch + p * b_row_stride, 0, 2);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            __builtin_prefetch(b_row + 2 * b_row_stride + v * FC_VW);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const FC_VEC wi = FC_VBROADCAST(row[i] + p);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                acc[v][i] = FC_VFMADD(wi, bv[v], acc[v][i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        FC_T *ci = c + i * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            if (accumulate == FC_STORE_ADD)
                acc[v][i] = FC_VADD(FC_VLOADU(ci + v * FC_VW), acc[v][i]);
            if (accumulate == FC_STORE_STREAM)
                FC_VSTREAM(ci + v * FC_VW, acc[v][i]);
            else
                FC_VSTOREU(ci + v * FC_VW, acc[v][i]);
        }
    }
    if (accumulate == FC_STORE_STREAM)
        _mm_sfence();
}

void FC_STREAM_UKERNEL(ptrdiff_t kc, const FC_T *restrict w, ptrdiff_t w_row_stride,
                       const FC_T *restrict b, ptrdiff_t b_row_stride, FC_T *restrict c,
                       ptrdiff_t ldc, ptrdiff_t columns, const FC_T *b_prefetch, int accumulate)
{
    if (columns > 2 * FC_VW)
        FC_STREAM_VECTORS(3, kc, w, w_row_stride, b, b_row_stride, c, ldc, b_prefetch,
                          accumulate);
    else if (columns > FC_VW)
        FC_STREAM_VECTORS(2, kc, w, w_row_stride, b, b_row_stride, c, ldc, b_prefetch,
                          accumulate);
    else
        FC_STREAM_VECTORS(1, kc, w, w_row_stride, b, b_row_stride, c, ldc, b_prefetch,
                          accumulate);
}

#undef FC_STREAM_VECTORS
