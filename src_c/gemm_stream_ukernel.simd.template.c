/*
 * Body of the filter-streaming GEMM micro-kernels (contract: fastconv_kernels.h), included once per
 * dtype by gemm_ukernel__<isa>.c after simd_vector__<isa>.h, with FC_STREAM_MR (filter rows) and
 * FC_STREAM_UKERNEL (function name) defined. The tile is FC_STREAM_MR rows x 3 vectors of pixels:
 * 8 x 3 = 24 of AVX-512's 32 registers, 4 x 3 = 12 of AVX2's 16, with the 3 pixel vectors and the
 * broadcast beside them. Three vectors rather than two because the rows are the filters, read from
 * memory as they stream in: more rows would mean more streams in flight at once, fewer lanes
 * would waste more of the FC layer's pixel counts (36 pixels: 48 lanes here, 64 with 4 vectors).
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
void FC_STREAM_UKERNEL(ptrdiff_t kc, const FC_T *restrict w, ptrdiff_t w_row_stride,
                       const FC_T *restrict b, ptrdiff_t b_row_stride, FC_T *restrict c,
                       ptrdiff_t ldc, const FC_T *b_prefetch, int accumulate)
{
    enum { MR = FC_STREAM_MR, NR = 3 * FC_VW };
    FC_VEC acc0[MR], acc1[MR], acc2[MR];
    const FC_T *row[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        acc0[i] = FC_VZERO();
        acc1[i] = FC_VZERO();
        acc2[i] = FC_VZERO();
        row[i] = w + i * w_row_stride;
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const FC_T *b_row = b + p * b_row_stride;
        const FC_VEC b0 = FC_VLOADU(b_row);
        const FC_VEC b1 = FC_VLOADU(b_row + FC_VW);
        const FC_VEC b2 = FC_VLOADU(b_row + 2 * FC_VW);
        if (b_prefetch)
            __builtin_prefetch(b_prefetch + p * b_row_stride, 0, 2);
        __builtin_prefetch(b_row + 2 * b_row_stride);
        __builtin_prefetch(b_row + 2 * b_row_stride + FC_VW);
        __builtin_prefetch(b_row + 2 * b_row_stride + 2 * FC_VW);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const FC_VEC wi = FC_VBROADCAST(row[i] + p);
            acc0[i] = FC_VFMADD(wi, b0, acc0[i]);
            acc1[i] = FC_VFMADD(wi, b1, acc1[i]);
            acc2[i] = FC_VFMADD(wi, b2, acc2[i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        FC_T *ci = c + i * ldc;
        if (accumulate == FC_STORE_ADD) {
            acc0[i] = FC_VADD(FC_VLOADU(ci), acc0[i]);
            acc1[i] = FC_VADD(FC_VLOADU(ci + FC_VW), acc1[i]);
            acc2[i] = FC_VADD(FC_VLOADU(ci + 2 * FC_VW), acc2[i]);
        }
        if (accumulate == FC_STORE_STREAM) {
            FC_VSTREAM(ci, acc0[i]);
            FC_VSTREAM(ci + FC_VW, acc1[i]);
            FC_VSTREAM(ci + 2 * FC_VW, acc2[i]);
            continue;
        }
        FC_VSTOREU(ci, acc0[i]);
        FC_VSTOREU(ci + FC_VW, acc1[i]);
        FC_VSTOREU(ci + 2 * FC_VW, acc2[i]);
    }
    if (accumulate == FC_STORE_STREAM)
        _mm_sfence();
}
