"""Cython drivers of conv2d forward and backward: split the work into tasks, spread them over
OpenMP threads with the GIL released, and call the C kernels of src_c/ on each tile.

Trusts its caller (fastconv/conv.py, after fastconv/_geometry.py validated everything): arrays are
C-contiguous with the shapes the geometry says, every extent of an output is >= 1, K and C divide
by groups, and `isa` names a path this CPU runs. Every output element is owned by exactly one
task, and the tiling depends on the shape and the ISA only, never on the thread count, so results
are bit-identical for any number of threads.

Notation: one image and group of a convolution is the product W_g[KG, R] @ col[R, P], where
R = CG*FH*FW indexes kernel offsets r = (c, fh, fw) and P = HO*WO output pixels p = (ho, wo), and
col[r, p] = x[c, ho*SH + fh*DH - PH, wo*SW + fw*DW - PW] (0 in the padding).
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset

import numpy as np

from fastconv._geometry import empty_aligned
from fastconv._kernels cimport (
    FC_GEMM_MAX_TILE, FC_ISA_AVX2, FC_ISA_AVX512, FC_STORE_ADD, FC_STORE_SET, FC_STORE_STREAM,
    fc_dconv2d_direct_row__generic, fc_kernel_table, fc_kernel_table_for,
    fc_sconv2d_direct_row__generic,
)

cdef extern from *:
    void __builtin_prefetch(const void *address) noexcept nogil

cdef enum:
    # Columns ahead that packing a transposed A prefetches (~ memory latency / time per column).
    PACK_PREFETCH_DISTANCE = 16
    # Filters per row-kernel task: each input row read from cache feeds this many output rows.
    DIRECT_FILTER_BLOCK = 16
    # Groups with at most this many filters run the single-filter kernel (a register tile would
    # be mostly padding), or the row kernel where no band fits; see
    # fastconv.conv.choose_algorithm, which makes the same cut.
    DIRECT_ROW_MAX_FILTERS = 4
    # A thread's input band for the register-tiled direct kernels: it stays in L2 (2 MiB here)
    # beside a block of filters. When a layer's filters are too big to stay in L2 themselves,
    # every filter block is fetched again for each band, so the band grows to serve more output
    # rows per fetch (measured: vgg_conv5_2 forward -13%, vgg_conv3_2 -12% at T=1; for layers
    # whose filters fit, the larger band measured up to 10% slower).
    DIRECT_BAND_BYTES = 262144
    DIRECT_SUM_TAPS = 256
    # Filter-vector tiles run in chunks of this many, each block of DIRECT_SUM_TAPS taps over
    # the whole chunk before the next: a block's packed filters (16 KB with AVX2) then serve 16
    # tiles from L1 instead of one tile each from L2. vgg_conv5_2 forward at T=1 on Zen 3,
    # ours / PyTorch: 1.17-1.34 with one tile per chunk, 1.08-1.18 with 16 (3 alternating
    # rounds; asv Conv2d.time_conv2d across commit c3a7c75 compares the same). Its scratch
    # holds a chunk's tiles: 16 x 1.75 KB at most.
    DIRECT_TILE_CHUNK = 16
    DIRECT_BIG_FILTERS_BAND_BYTES = 1048576
    DIRECT_BIG_FILTERS_BYTES = 1048576
    # The largest one-row band the register-tiled direct kernels build (see direct_band_fits).
    DIRECT_BAND_LIMIT = 8388608
    # GEMM cache blocking: reduction length per packed panel, micro-panels per packed block. With
    # the largest micro-kernel (14x32 floats) a thread's packed blocks take ~380 KB: they stay in L2.
    GEMM_KC = 256
    GEMM_MC_PANELS = 8
    GEMM_NC_PANELS = 8
    # Backward-weights tasks own GEMM_DW_PANELS micro-panels of dw's columns each: dy's packed
    # rows serve that many columns, so fewer panels repack dy more often (4 measured 12-30%
    # slower on the VGG layers; 16 no faster than 8 and needs more batch parts for the threads).
    GEMM_DW_PANELS = 8
    # conv2d_backward_weight_filter_tiles: a task's block of dw tiles, in L2 beside its band. Each
    # block of channels packs dy again, so small blocks pack it more often (vgg_conv5_2: 37 blocks
    # at 256 KB, 19 here), large ones leave the threads few tasks (vgg_conv3_2: 3 at 1 MB, 5 here;
    # backward_weight_filter_tile_blocks gives the counts).
    DW_FILTER_TILE_BLOCK_BYTES = 524288
    # conv2d_im2col_over_batch: most micro-panels of filters per task, which bounds the task's
    # block of C^T (GEMM_MC_PANELS*MR pixels x this many panels: <= 917 KB) in the workspace.
    # Every task packs its pixels' columns again, and with few pixels that packing (runs of a
    # few pixels per output row) costs as much as a tenth of the products, so tasks are few
    # and wide: 4 tasks for a 4096-filter FC layer, not MIN_TASKS.
    GEMM_OVER_BATCH_FILTER_PANELS = 32
    GEMM_OVER_BATCH_MIN_TASKS = 2
    # conv2d_im2col_streaming_filters: most pixel panels per block (each block reads the
    # filters from memory again), taps per panel packed at once (GEMM_STREAM_TAPS / panels,
    # a multiple of GEMM_KC: each filter row is then read in runs that long; 2048 taps for one
    # 48-pixel panel measured 20% faster than 256 on the FC layer), and the task's block of
    # outputs (C_BYTES).
    GEMM_STREAM_PIXEL_PANELS = 8
    GEMM_STREAM_TAPS = 2048
    GEMM_STREAM_C_BYTES = 524288
    # Most pixels (over the batch) of a layer that streams its filters through the few-pixel
    # kernel: one pass of it (4 pixels: 8 accumulators beside 8 transposed taps fill AVX2's 16
    # registers).
    GEMM_FEW_PIXELS = 4
    # conv2d_pointwise: pixel panels per task. Small enough that one 56x56 image gives 17
    # tasks (the two threads split a batch of one evenly), large enough that a task's next
    # panel, whose lines its calls prefetch, is usually its own.
    POINTWISE_TASK_PANELS = 4
    # conv2d_backward_input: most bytes of a task's column block (rows of its channels' taps x a
    # block of pixels), which stays in L2 beside the packed blocks between its GEMMs and col2im.
    DX_COLUMNS_BYTES = 524288
    # Fewer tasks than this and the drivers split the work further, so both threads have some.
    MIN_TASKS = 8


cdef struct ConvShape:
    # One image's geometry: input H x W, kernel FH x FW, output HO x WO, stride, padding, dilation.
    Py_ssize_t H, W, FH, FW, HO, WO, SH, SW, PH, PW, DH, DW


cdef ConvShape _conv_shape(Py_ssize_t H, Py_ssize_t W, Py_ssize_t FH, Py_ssize_t FW,
                           Py_ssize_t HO, Py_ssize_t WO, Py_ssize_t SH, Py_ssize_t SW,
                           Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW):
    cdef ConvShape s
    s.H, s.W, s.FH, s.FW, s.HO, s.WO = H, W, FH, FW, HO, WO
    s.SH, s.SW, s.PH, s.PW, s.DH, s.DW = SH, SW, PH, PW, DH, DW
    return s


cdef inline void _fill_rows(floating *y, Py_ssize_t rows, Py_ssize_t row_stride, Py_ssize_t cols,
                            const floating *bias, bint has_bias, Py_ssize_t k0) noexcept nogil:
    """y[i*row_stride + j] = bias[k0 + i] (or 0) for i < rows, j < cols."""
    cdef Py_ssize_t i, j
    cdef floating value
    for i in range(rows):
        value = bias[k0 + i] if has_bias else 0
        for j in range(cols):
            y[i * row_stride + j] = value


cdef struct ColRow:
    # Where row r = (c, fh, fw) of the column matrix reads: input channel c, kernel row fh, input
    # column wo*SW + shift for output column wo, and the output columns [lo, hi) whose input
    # column lies inside the image (whichever output row they are in).
    Py_ssize_t c, fh, fw, shift, lo, hi


cdef inline void _col_row_columns(const ConvShape *s, ColRow *row) noexcept nogil:
    row.shift = row.fw * s.DW - s.PW
    if s.SW == 1:
        row.lo = max(0, -row.shift)
        row.hi = max(0, s.W - row.shift)
    else:
        row.lo = 0 if row.shift >= 0 else (-row.shift + s.SW - 1) // s.SW
        row.hi = 0 if s.W - row.shift <= 0 else (s.W - row.shift + s.SW - 1) // s.SW


cdef inline ColRow _col_row(const ConvShape *s, Py_ssize_t r) noexcept nogil:
    cdef ColRow row
    row.fw = r % s.FW
    row.fh = (r // s.FW) % s.FH
    row.c = r // (s.FW * s.FH)
    _col_row_columns(s, &row)
    return row


cdef inline void _col_row_next(const ConvShape *s, ColRow *row) noexcept nogil:
    """Advance `row` to the next r (the tiles' per-row divisions showed in profiles)."""
    row.fw = row.fw + 1
    if row.fw == s.FW:
        row.fw = 0
        row.fh = row.fh + 1
        if row.fh == s.FH:
            row.fh = 0
            row.c = row.c + 1
    _col_row_columns(s, row)


cdef inline Py_ssize_t _col_run(const ConvShape *s, const ColRow *row, Py_ssize_t ho,
                                Py_ssize_t wo, Py_ssize_t run, Py_ssize_t *begin,
                                Py_ssize_t *end) noexcept nogil:
    """For the run of output columns wo .. wo+run-1 of output row ho: the input row it reads,
    and in [begin, end) the columns of the run whose input lies inside the image (empty if
    none)."""
    cdef Py_ssize_t hi = ho * s.SH + row.fh * s.DH - s.PH
    begin[0] = wo
    end[0] = wo
    if 0 <= hi < s.H:
        begin[0] = min(max(wo, row.lo), wo + run)
        end[0] = max(begin[0], min(wo + run, row.hi))
    return hi


cdef inline void _copy_strided(const fc_kernel_table *kernels, const floating *src,
                               Py_ssize_t stride, Py_ssize_t n, floating *dst) noexcept nogil:
    if floating is float:
        kernels.scopy_strided(src, stride, n, dst)
    else:
        kernels.dcopy_strided(src, stride, n, dst)


cdef inline void _add_strided(const fc_kernel_table *kernels, const floating *src,
                              Py_ssize_t stride, Py_ssize_t n, floating *dst) noexcept nogil:
    if floating is float:
        kernels.sadd_strided(src, stride, n, dst)
    else:
        kernels.dadd_strided(src, stride, n, dst)


cdef void _im2col_tile(const fc_kernel_table *kernels, const floating *x, const ConvShape *s,
                       Py_ssize_t r0, Py_ssize_t rc, Py_ssize_t p0, Py_ssize_t pc,
                       Py_ssize_t r_stride, floating *out) noexcept nogil:
    """out[(r-r0)*r_stride + (p-p0)] = col[r, p] for r0 <= r < r0+rc, p0 <= p < p0+pc, x being
    one image's channels of one group. Pixels go in runs within one output row, so each run is
    a bounds-free copy (strided at strides > 1) between two zero fills; the index arithmetic is
    done once per row of col, not per run (short output rows make many runs)."""
    cdef Py_ssize_t rr, p, ho, wo, run, hi, begin, end, i
    cdef ColRow row
    cdef const floating *x_row
    cdef floating *dst
    cdef Py_ssize_t ho0 = p0 // s.WO, wo0 = p0 % s.WO
    row = _col_row(s, r0)
    for rr in range(rc):
        if rr > 0:
            _col_row_next(s, &row)
        p = p0
        ho = ho0
        wo = wo0
        while p < p0 + pc:
            run = min(s.WO - wo, p0 + pc - p)
            hi = _col_run(s, &row, ho, wo, run, &begin, &end)
            dst = out + rr * r_stride + (p - p0 - wo)
            for i in range(wo, begin):
                dst[i] = 0
            if begin < end:
                x_row = x + (row.c * s.H + hi) * s.W + row.shift
                if s.SW == 1:
                    memcpy(dst + begin, x_row + begin, (end - begin) * sizeof(floating))
                else:
                    _copy_strided(kernels, x_row + begin * s.SW, s.SW, end - begin, dst + begin)
            for i in range(end, wo + run):
                dst[i] = 0
            p = p + run
            ho = ho + 1
            wo = 0


cdef void _col2im_tile_add(const fc_kernel_table *kernels, const floating *cols,
                           Py_ssize_t r_stride, const ConvShape *s, Py_ssize_t r0, Py_ssize_t rc,
                           Py_ssize_t p0, Py_ssize_t pc, floating *x) noexcept nogil:
    """The adjoint of _im2col_tile (unit pixel stride): x[c, hi, wi] += cols[(r-r0)*r_stride +
    (p-p0)] for every (r, p) of the tile whose input position lies inside the image."""
    cdef Py_ssize_t rr, p, ho, wo, run, hi, begin, end, i
    cdef ColRow row
    cdef floating *x_row
    cdef const floating *src
    cdef Py_ssize_t ho0 = p0 // s.WO, wo0 = p0 % s.WO
    row = _col_row(s, r0)
    for rr in range(rc):
        if rr > 0:
            _col_row_next(s, &row)
        p = p0
        ho = ho0
        wo = wo0
        while p < p0 + pc:
            run = min(s.WO - wo, p0 + pc - p)
            hi = _col_run(s, &row, ho, wo, run, &begin, &end)
            if begin < end:
                src = cols + rr * r_stride + (p - p0 - wo)
                x_row = x + (row.c * s.H + hi) * s.W + row.shift
                if s.SW == 1:
                    for i in range(begin, end):
                        x_row[i] += src[i]
                else:
                    _add_strided(kernels, src + begin, s.SW, end - begin, x_row + begin * s.SW)
            p = p + run
            ho = ho + 1
            wo = 0


cdef inline void _pack_kmajor(const fc_kernel_table *kernels, const floating *src,
                              Py_ssize_t row_stride, Py_ssize_t rows, Py_ssize_t kc,
                              Py_ssize_t panel, floating *dst) noexcept nogil:
    if floating is float:
        kernels.spack_kmajor(src, row_stride, rows, kc, panel, dst)
    else:
        kernels.dpack_kmajor(src, row_stride, rows, kc, panel, dst)


cdef void _pack_a(const fc_kernel_table *kernels, const floating *src, Py_ssize_t row_stride,
                  Py_ssize_t mc, Py_ssize_t kc, Py_ssize_t MR, floating *packed) noexcept nogil:
    """Pack A[i, p] = src[i*row_stride + p] (i < mc, p < kc) into MR-row panels stored column
    by column, zero-padding the last panel to MR rows."""
    cdef Py_ssize_t panel
    for panel in range((mc + MR - 1) // MR):
        _pack_kmajor(kernels, src + panel * MR * row_stride, row_stride,
                     min(MR, mc - panel * MR), kc, MR, packed + panel * MR * kc)


cdef void _pack_a_transposed(const floating *src, Py_ssize_t col_stride, Py_ssize_t mc,
                             Py_ssize_t kc, Py_ssize_t MR, floating *packed) noexcept nogil:
    """Pack A[i, p] = src[p*col_stride + i] (A is a transposed matrix: its columns are
    contiguous) into MR-row panels like `_pack_a`.

    Each column is read once, whole, and dealt out to the panels: it is one short contiguous
    run, whereas panel by panel every column would be fetched mc/MR times from a different page.
    Columns lie a matrix row apart, beyond what hardware prefetchers follow, so the columns
    ahead are fetched by hand.
    """
    cdef Py_ssize_t panels = (mc + MR - 1) // MR, tail = mc - (panels - 1) * MR
    cdef Py_ssize_t panel, i, p, line
    cdef Py_ssize_t line_elements = 64 // sizeof(floating)
    cdef const floating *column
    cdef floating *dst
    if tail < MR:
        dst = packed + (panels - 1) * MR * kc
        for p in range(kc):
            for i in range(tail, MR):
                dst[p * MR + i] = 0
    for p in range(kc):
        if p + PACK_PREFETCH_DISTANCE < kc:
            column = src + (p + PACK_PREFETCH_DISTANCE) * col_stride
            for line in range((mc + line_elements - 1) // line_elements):
                __builtin_prefetch(column + line * line_elements)
        column = src + p * col_stride
        for panel in range(panels - 1):
            dst = packed + panel * MR * kc + p * MR
            for i in range(MR):
                dst[i] = column[panel * MR + i]
        dst = packed + (panels - 1) * MR * kc + p * MR
        for i in range(tail):
            dst[i] = column[(panels - 1) * MR + i]


cdef void _pack_b(const floating *src, Py_ssize_t row_stride, Py_ssize_t kc, Py_ssize_t nc,
                  Py_ssize_t NR, floating *packed) noexcept nogil:
    """Pack B[p, j] = src[p*row_stride + j] (p < kc, j < nc) into NR-column panels stored row by
    row, zero-padding the last panel to NR columns."""
    cdef Py_ssize_t panel, p, j, cols
    cdef floating *dst
    for panel in range((nc + NR - 1) // NR):
        dst = packed + panel * NR * kc
        cols = min(NR, nc - panel * NR)
        for p in range(kc):
            for j in range(cols):
                dst[p * NR + j] = src[p * row_stride + panel * NR + j]
            for j in range(cols, NR):
                dst[p * NR + j] = 0


cdef void _pack_im2col(const fc_kernel_table *kernels, const floating *x, const ConvShape *s,
                       Py_ssize_t k0, Py_ssize_t kc, Py_ssize_t p0, Py_ssize_t nc, Py_ssize_t NR,
                       floating *packed) noexcept nogil:
    """B = col[k0:k0+kc, p0:p0+nc] packed into NR-column panels (the forward's B operand)."""
    cdef Py_ssize_t panel, pc
    for panel in range((nc + NR - 1) // NR):
        pc = min(NR, nc - panel * NR)
        if pc < NR:
            memset(packed + panel * kc * NR, 0, kc * NR * sizeof(floating))
        _im2col_tile(kernels, x, s, k0, kc, p0 + panel * NR, pc, NR, packed + panel * kc * NR)


cdef void _pack_im2col_transposed(const fc_kernel_table *kernels, const floating *x,
                                  Py_ssize_t image_stride, const ConvShape *s, Py_ssize_t q0,
                                  Py_ssize_t kc, Py_ssize_t r0, Py_ssize_t nc, Py_ssize_t NR,
                                  floating *rows, floating *packed) noexcept nogil:
    """B = col[r0:r0+nc, q0:q0+kc]^T packed into NR-column panels (backward-weights' B operand:
    the reduction runs over pixels), q counting the batch's output pixels image after image (x
    holds image n's channels of the group at x + n*image_stride). Each panel's rows are built as
    rows (NR x kc, in `rows`), image by image, then transposed into the panel by the packing
    kernel."""
    cdef Py_ssize_t P = s.HO * s.WO
    cdef Py_ssize_t panel, rc, q, n, p, run
    for panel in range((nc + NR - 1) // NR):
        rc = min(NR, nc - panel * NR)
        q = q0
        while q < q0 + kc:
            n = q // P
            p = q % P
            run = min(P - p, q0 + kc - q)
            _im2col_tile(kernels, x + n * image_stride, s, r0 + panel * NR, rc, p, run, kc,
                         rows + (q - q0))
            q = q + run
        _pack_kmajor(kernels, rows, kc, rc, kc, NR, packed + panel * kc * NR)


cdef void _pack_a_pixels(const fc_kernel_table *kernels, const floating *dy,
                         Py_ssize_t image_stride, Py_ssize_t P, Py_ssize_t q0, Py_ssize_t mc,
                         Py_ssize_t kc, Py_ssize_t MR, floating *packed) noexcept nogil:
    """`_pack_a` of A[i, q] = row i of dy at the batch's output pixel q0 + q (q counting pixels
    image after image; dy's rows of image n at dy + n*image_stride, P pixels apart): each
    image's run of pixels goes into its columns of every panel."""
    cdef Py_ssize_t panel, q, n, p, run
    for panel in range((mc + MR - 1) // MR):
        q = q0
        while q < q0 + kc:
            n = q // P
            p = q % P
            run = min(P - p, q0 + kc - q)
            _pack_kmajor(kernels, dy + n * image_stride + panel * MR * P + p, P,
                         min(MR, mc - panel * MR), run, MR,
                         packed + panel * MR * kc + (q - q0) * MR)
            q = q + run


cdef inline void _ukernel(const fc_kernel_table *kernels, Py_ssize_t kc, const floating *a,
                          const floating *b, floating *c, Py_ssize_t ldc,
                          int accumulate) noexcept nogil:
    if floating is float:
        kernels.sgemm_ukernel(kc, a, b, c, ldc, accumulate)
    else:
        kernels.dgemm_ukernel(kc, a, b, c, ldc, accumulate)


cdef void _gemm_packed_block(const fc_kernel_table *kernels, Py_ssize_t MR, Py_ssize_t NR,
                             Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc,
                             const floating *a_packed, const floating *b_packed,
                             floating *c, Py_ssize_t ldc, floating *edge_tile,
                             bint accumulate=True) noexcept nogil:
    """c[0:mc, 0:nc] += a_packed (mc x kc) @ b_packed (kc x nc) (or =, when not accumulate),
    one micro-kernel per MR x NR tile. Partial tiles at the edges go through edge_tile, so no
    write leaves c's block."""
    cdef Py_ssize_t ir, jr, i, j, rows, cols
    cdef floating *c_tile
    for ir in range((mc + MR - 1) // MR):
        rows = min(MR, mc - ir * MR)
        for jr in range((nc + NR - 1) // NR):
            cols = min(NR, nc - jr * NR)
            c_tile = c + ir * MR * ldc + jr * NR
            if rows == MR and cols == NR:
                _ukernel(kernels, kc, a_packed + ir * MR * kc, b_packed + jr * NR * kc,
                         c_tile, ldc, accumulate)
            else:
                _ukernel(kernels, kc, a_packed + ir * MR * kc, b_packed + jr * NR * kc,
                         edge_tile, NR, 0)
                for i in range(rows):
                    for j in range(cols):
                        if accumulate:
                            c_tile[i * ldc + j] += edge_tile[i * NR + j]
                        else:
                            c_tile[i * ldc + j] = edge_tile[i * NR + j]


cdef (Py_ssize_t, Py_ssize_t) _micro_tile(const fc_kernel_table *kernels, bint single):
    if single:
        return kernels.sgemm_mr, kernels.sgemm_nr
    return kernels.dgemm_mr, kernels.dgemm_nr


def _aligned_rows(Py_ssize_t rows, Py_ssize_t columns, bint single, bint zeroed=False):
    """An uninitialised (or zeroed) float32/float64 array of `rows` rows of at least `columns`
    elements, each row starting on a 64-byte cache line: per-thread workspaces, whose packed
    panels and bands the kernels read with vector loads (see _geometry.empty_aligned)."""
    cdef Py_ssize_t line = 16 if single else 8
    rows_array = empty_aligned((rows, (columns + line - 1) // line * line),
                               np.float32 if single else np.float64)
    if zeroed:
        rows_array.fill(0)
    return rows_array


def _split_rows(Py_ssize_t rows, Py_ssize_t base_tasks, Py_ssize_t MR,
                Py_ssize_t min_tasks=MIN_TASKS):
    """(rows per task, row tasks): split `rows` into MR-multiples when base_tasks is fewer than
    min_tasks."""
    cdef Py_ssize_t parts, per_task
    if base_tasks >= min_tasks or rows <= MR:
        return rows, 1
    parts = min((rows + MR - 1) // MR, (min_tasks + base_tasks - 1) // base_tasks)
    per_task = ((rows + parts - 1) // parts + MR - 1) // MR * MR
    return per_task, (rows + per_task - 1) // per_task


cdef struct BandLayout:
    # A per-thread input band: band_rows input rows (for rows_per_block output rows) of every
    # channel, each row_len = SW * phase_len long, split into SW column phases.
    Py_ssize_t phase_len, row_len, rows_per_block, band_rows


cdef BandLayout _band_layout(Py_ssize_t CG, Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t HO,
                             Py_ssize_t read_width, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t DH,
                             Py_ssize_t DW, Py_ssize_t itemsize, Py_ssize_t filter_bytes):
    """The band for kernels that read read_width consecutive outputs' pixels of each tap: a tap
    starts (fw*DW)//SW into its phase, and as many output rows as fit the band budget (larger
    when filter_bytes, the layer's filters, exceed DIRECT_BIG_FILTERS_BYTES)."""
    cdef BandLayout band
    band.phase_len = (FW - 1) * DW // SW + read_width
    band.row_len = SW * band.phase_len
    cdef Py_ssize_t budget = (DIRECT_BIG_FILTERS_BAND_BYTES
                              if filter_bytes > DIRECT_BIG_FILTERS_BYTES else DIRECT_BAND_BYTES)
    cdef Py_ssize_t budget_rows = budget // itemsize // (CG * band.row_len)
    band.rows_per_block = max(1, min(HO, (budget_rows - (FH - 1) * DH - 1) // SH + 1))
    band.band_rows = (band.rows_per_block - 1) * SH + (FH - 1) * DH + 1
    return band


def direct_band_fits(Py_ssize_t CG, Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t WO,
                     Py_ssize_t SW, Py_ssize_t DH, Py_ssize_t DW, Py_ssize_t itemsize):
    """Whether the smallest band (one output row) of the register-tiled kernels stays within
    DIRECT_BAND_LIMIT bytes. Computed in Python integers, so huge dilations or widths cannot
    wrap; beyond it (rows so far apart that no band would stay in cache) the kernels that need
    no band take over."""
    read_width = (WO + 15) // 16 * 16
    row_len = SW * ((FW - 1) * DW // SW + read_width)
    return int(CG) * ((FH - 1) * DH + 1) * row_len * itemsize <= DIRECT_BAND_LIMIT


def _tap_offsets(BandLayout band, Py_ssize_t CG, Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t SW,
                 Py_ssize_t DH, Py_ssize_t DW):
    """Band offset of every tap (c, fh, fw) for the first output row and column: the channel's
    rows, the tap's input row, then the phase and position of its column."""
    return np.array([(c * band.band_rows + fh * DH) * band.row_len
                     + (fw * DW) % SW * band.phase_len + fw * DW // SW
                     for c in range(CG) for fh in range(FH) for fw in range(FW)], dtype=np.intp)


cpdef bint reads_inside_x(Py_ssize_t H, Py_ssize_t W, Py_ssize_t HO, Py_ssize_t WO,
                          Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t SH, Py_ssize_t SW,
                          Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW):
    """Whether the filter-vector tiles may read x itself as their band (which would be a plain
    copy of x's rows): unit column stride, where a row is the band's single phase, and no
    padding, neither given (PH, PW) nor implied by the output's size (a "same" even kernel pads
    the bottom and right only, and conv_transpose2d's output_padding adds a row and a column:
    both show in HO and WO alone), so every output's window lies inside x."""
    return (PH == 0 and PW == 0 and SW == 1 and (HO - 1) * SH + (FH - 1) * DH < H
            and WO + (FW - 1) * DW <= W)


cdef BandLayout _x_as_band(Py_ssize_t H, Py_ssize_t W):
    """The band layout of x itself (see reads_inside_x): rows W long, H per channel."""
    cdef BandLayout layout
    layout.band_rows, layout.row_len, layout.phase_len, layout.rows_per_block = H, W, W, H
    return layout


cdef void _build_band(const fc_kernel_table *kernels, const floating *x, Py_ssize_t C,
                      Py_ssize_t H, Py_ssize_t W, Py_ssize_t first_row, Py_ssize_t band_rows,
                      Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t SW, Py_ssize_t phase_len,
                      floating *band, bint zero_pads=True) noexcept nogil:
    """band[c][r][(q % SW)*phase_len + q // SW] = x[c][first_row + r - PH][q - PW] (0 outside the
    image) for r < band_rows and padded columns q < SW*phase_len: the input rows a block of
    output rows reads, zero-padded, with columns split by phase modulo the stride so that the
    pixels one tap reads for consecutive outputs are contiguous.

    Without zero_pads only the image's pixels are written: for a band that holds zeros wherever
    this call would put them (zero-filled, and since then only built with the same first_row),
    which spares a small plane's rows their two or four short fills each."""
    cdef Py_ssize_t row_len = SW * phase_len
    cdef Py_ssize_t c, r, hi, copied, phase, begin, end
    cdef floating *dst
    cdef const floating *src
    for c in range(C):
        for r in range(band_rows):
            dst = band + (c * band_rows + r) * row_len
            hi = first_row + r - PH
            if hi < 0 or hi >= H:
                if zero_pads:
                    memset(dst, 0, row_len * sizeof(floating))
                continue
            src = x + (c * H + hi) * W
            if SW == 1:
                copied = max(0, min(W, row_len - PW))
                memcpy(dst + PW, src, copied * sizeof(floating))
                if zero_pads:
                    memset(dst, 0, min(PW, row_len) * sizeof(floating))
                    memset(dst + PW + copied, 0, (row_len - PW - copied) * sizeof(floating))
            else:
                # Phase p holds padded columns p, p + SW, p + 2*SW, ...: zeros, image, zeros.
                for phase in range(SW):
                    begin = min(phase_len, max(0, (PW - phase + SW - 1) // SW))
                    end = min(phase_len, max(begin, (W + PW - phase + SW - 1) // SW))
                    _copy_strided(kernels, src + begin * SW + phase - PW, SW, end - begin,
                                  dst + phase * phase_len + begin)
                    if zero_pads:
                        memset(dst + phase * phase_len, 0, begin * sizeof(floating))
                        memset(dst + phase * phase_len + end, 0,
                               (phase_len - end) * sizeof(floating))


cdef void _pack_direct_filters(const floating *w, Py_ssize_t KG, Py_ssize_t taps,
                               Py_ssize_t KT, Py_ssize_t k0, floating *packed,
                               Py_ssize_t rotated_taps) noexcept nogil:
    """packed[tap*KT + j] = the tap of filter k0 + j, for the KT lanes j of one register tile
    (0 past the group's KG filters), tap by tap, for broadcasting. Filter f's taps are
    w[f*taps + tap]; or, when rotated_taps (FF = FH*FW) is not 0, w holds the group's forward
    filters (taps/FF of them, each with KG channels) and filter f is channel f of all of them
    turned by 180 degrees: tap (i, ff) is w[(i*KG + f)*FF + FF-1-ff] for forward filter i."""
    cdef Py_ssize_t tap, k, FF = rotated_taps
    if not rotated_taps:
        for tap in range(taps):
            for k in range(KT):
                packed[tap * KT + k] = w[(k0 + k) * taps + tap] if k0 + k < KG else 0
        return
    cdef Py_ssize_t kk, ff, filters = min(KT, KG - k0)
    cdef const floating *src
    for kk in range(taps // FF):
        for ff in range(FF):
            src = w + (kk * KG + k0) * FF + FF - 1 - ff
            for k in range(filters):
                packed[(kk * FF + ff) * KT + k] = src[k * FF]
            for k in range(filters, KT):
                packed[(kk * FF + ff) * KT + k] = 0


cdef inline void _direct_tile(const fc_kernel_table *kernels, Py_ssize_t taps,
                              const Py_ssize_t *tap_offset, const floating *x0,
                              const floating *x1, const floating *w, floating *y0, floating *y1,
                              Py_ssize_t k_stride, Py_ssize_t kt, unsigned lanes0,
                              unsigned lanes1) noexcept nogil:
    if floating is float:
        kernels.sdirect_tile(taps, tap_offset, x0, x1, w, y0, y1, k_stride, kt, lanes0, lanes1)
    else:
        kernels.ddirect_tile(taps, tap_offset, x0, x1, w, y0, y1, k_stride, kt, lanes0, lanes1)


cdef Py_ssize_t _flat_row_len(Py_ssize_t W, Py_ssize_t WO, Py_ssize_t FW, Py_ssize_t PW,
                              Py_ssize_t DW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t VW):
    """The band row length of flat rows, or 0 when they do not save lanes.

    At unit strides output (r, wo) of a block can sit at band position r*L + wo, each tap
    reading r*L + wo + its offset: vectors then run over the block's outputs as one flat row and
    only the L - WO positions between rows are computed in vain, instead of the lanes up to a
    multiple of VW in every row (56-pixel rows fill 56 of 64 lanes). Row r's right padding and
    row r+1's left padding share the zeros between them, so L = max(PW + W, WO + (FW-1)*DW - PW),
    and at least WO (padding wider than the kernel's reach would make it shorter).
    """
    if SH != 1 or SW != 1:
        return 0
    cdef Py_ssize_t L = max(PW + W, WO + (FW - 1) * DW - PW, WO)
    cdef Py_ssize_t row_lanes = (WO + VW - 1) // VW * VW
    # Flat rows win when they compute fewer positions per output row.
    return L if L < row_lanes else 0


cdef inline unsigned _flat_lanes(Py_ssize_t f0, Py_ssize_t L, Py_ssize_t WO, Py_ssize_t span,
                                 Py_ssize_t VW, Py_ssize_t *first) noexcept nogil:
    """The lanes of the flat vector at positions f0 .. f0+VW-1 that are outputs (column < WO,
    position < span), and in first the output index r*WO + wo of the lowest of them."""
    cdef Py_ssize_t r = f0 // L, wo = f0 % L, l
    cdef unsigned lanes = 0
    first[0] = 0
    for l in range(VW):
        if f0 + l < span and wo < WO:
            if lanes == 0:
                first[0] = r * WO + wo
            lanes = lanes | (1u << l)
        wo = wo + 1
        if wo == L:
            wo = 0
            r = r + 1
    return lanes


cdef inline void _direct_filter_tile(const fc_kernel_table *kernels, Py_ssize_t taps,
                                     const Py_ssize_t *tap_offset, const floating *x,
                                     const Py_ssize_t *pixel_offset, const floating *w,
                                     floating *c, int accumulate) noexcept nogil:
    if floating is float:
        kernels.sdirect_filter_tile(taps, tap_offset, x, pixel_offset, w, c, accumulate)
    else:
        kernels.ddirect_filter_tile(taps, tap_offset, x, pixel_offset, w, c, accumulate)


cdef inline Py_ssize_t _block_tiles(Py_ssize_t rows, Py_ssize_t WO, Py_ssize_t MR,
                                     bint wrap) noexcept nogil:
    """Filter-vector tiles of a block of `rows` output rows (see _filter_tile_outputs)."""
    return (rows * WO + MR - 1) // MR if wrap else rows * ((WO + MR - 1) // MR)


cdef inline Py_ssize_t _filter_tile_outputs(Py_ssize_t tile, bint wrap, Py_ssize_t MR,
                                            Py_ssize_t WO, Py_ssize_t rows,
                                            Py_ssize_t *count) noexcept nogil:
    """The outputs of a block's filter-vector tile: its first, as r*WO + wo within the block
    (returned), and how many of its MR pixels are outputs (in count). Wrapping tiles take the
    block's outputs MR at a time in row-major order; the others take ceil(WO/MR) tiles per
    row, the last of a row partial."""
    cdef Py_ssize_t row_tiles = (WO + MR - 1) // MR, first, wo
    if wrap:
        first = tile * MR
        count[0] = min(MR, rows * WO - first)
        return first
    wo = tile % row_tiles * MR
    count[0] = min(MR, WO - wo)
    return tile // row_tiles * WO + wo


cdef inline void _filter_tile_pixels(Py_ssize_t first, Py_ssize_t count, bint wrap,
                                     Py_ssize_t MR, Py_ssize_t WO, Py_ssize_t row_stride,
                                     Py_ssize_t *offset) noexcept nogil:
    """Where a tile's MR pixels read from, output (r, wo) reading from r*row_stride + wo, for
    the tile whose outputs are first .. first+count-1 (_filter_tile_outputs). A wrapping tile
    steps to the next row at the row's end and repeats its last output's position for its
    missing pixels; the others read on past the row's end, as the band allows."""
    # One division per tile: cifar_3x3's tiles run 27 taps each, about as long as 12 divisions.
    cdef Py_ssize_t p, r = first // WO
    cdef Py_ssize_t wo = first - r * WO
    for p in range(MR):
        offset[p] = r * row_stride + wo
        if p + 1 < count or not wrap:
            wo = wo + 1
            if wrap and wo == WO:
                wo = 0
                r = r + 1


cdef inline void _prefetch_channel_segments(const floating *base, Py_ssize_t channel_stride,
                                           Py_ssize_t segment_lines, Py_ssize_t first,
                                           Py_ssize_t end) noexcept nogil:
    """Prefetch lines [first, end) of the segments of segment_lines cache lines that start at
    base + c * channel_stride, numbered channel by channel."""
    cdef Py_ssize_t line_elements = 64 // sizeof(floating), i
    for i in range(first, end):
        __builtin_prefetch(base + (i // segment_lines) * channel_stride
                           + (i % segment_lines) * line_elements)


cdef inline bint _prefetches_next_band(int isa) noexcept nogil:
    """Whether conv2d_direct's filter tiles prefetch the x rows of the next band as they run.

    Measured on Sapphire Rapids with AVX-512, where the tiles otherwise waited on memory (asv
    Conv2dColdInput across commit 54ba3aa). On Zen 3 with AVX2 the hardware prefetchers keep
    up, and the prefetches only took load slots and, at two threads, fetched rows the other
    thread's task read: forward time without / with them (tools/ab_builds.py, medians of
    per-round ratios): T=1 0.94-0.99 on the VGG, AlexNet, strided and dilated layers, T=2
    0.90-0.99; with x evicted before each call (--cold) T=1 0.90-0.98, T=2 0.85-1.01. This
    follows the ISA path because those are the two machines measured.
    """
    return isa == FC_ISA_AVX512


cdef inline void _store_filter_tile(const fc_kernel_table *kernels, const floating *c,
                                    Py_ssize_t c_stride, Py_ssize_t pixels, Py_ssize_t kt,
                                    const floating *bias, floating *y,
                                    Py_ssize_t y_k_stride) noexcept nogil:
    if floating is float:
        kernels.sstore_filter_tile(c, c_stride, pixels, kt, bias, y, y_k_stride)
    else:
        kernels.dstore_filter_tile(c, c_stride, pixels, kt, bias, y, y_k_stride)


cdef double _filter_tile_lane_speed(int isa):
    """How much faster the filter-vector tiles run per busy lane than the pixel-vector tiles.

    Measured by forcing each kind on 3x3 "same" layers, both kinds alternating in one process
    at one thread, and taking the factor whose choices lost least against the faster kind of
    every shape. AVX-512 (Sapphire Rapids; 64 channels, output widths 7-48, 32-512 filters):
    1.2, float32 and float64; 1-3 of 28-48 shapes then pick the slower kind, by at most 2%.
    AVX2 (Zen 3; 64-128 channels at widths 28-56 with 12, 24, 40 and 48 filters, and the VGG
    layers): 1.1, where the pixel tiles won the 12- and 24-filter layers by ~20% and lost the
    others by 5-20%. (An earlier 1.5 for AVX2 was measured while GCC kept the AVX2 pixel tile's
    accumulators in memory, at a third of its speed.) The rule this replaced assumed the
    filter tiles 5% slower per lane, and so ran pixel tiles on layers such as VGG's 512-filter
    28x28 ones (ours / PyTorch 1.26-1.47 -> 1.07-1.08 at one thread with AVX-512) and
    AlexNet's 13x13 ones (1.38-1.57 -> 1.19-1.32); `python tools/network_layers.py --layers
    vgg_conv4_2,alexnet_conv3` shows those layers. The portable path keeps that old factor:
    it was not measured.
    """
    if isa == FC_ISA_AVX512:
        return 1.2
    if isa == FC_ISA_AVX2:
        return 1.1
    return 1 / 1.05


def direct_tile_kind(Py_ssize_t KG, Py_ssize_t W, Py_ssize_t WO, Py_ssize_t FW, Py_ssize_t PW,
                     Py_ssize_t DW, Py_ssize_t SH, Py_ssize_t SW, int isa, bint single):
    """Which register tiles conv2d_direct runs for KG filters per group and WO-pixel output
    rows: "filters" (filters along the vector lanes), "flat pixels" (pixels along the lanes,
    rows end to end: see _flat_row_len) or "pixels" (pixels along the lanes, row by row).

    Each kind leaves some lanes idle: 64 filters fill 70 lanes of 14-filter pixel tiles but 64
    of 32-filter ones, and 14-pixel rows fill 16 lanes of a pixel vector but 14 of a 14-pixel
    tile. The filter-vector tiles also run faster per busy lane, by _filter_tile_lane_speed
    (see there), so they run when their share of busy lanes times that factor beats the pixel
    tiles' share.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t KT, VW, MR, NR
    if single:
        KT, VW = kernels.sdirect_kt, kernels.sdirect_vw
        MR, NR = kernels.sfilter_tile_mr, kernels.sfilter_tile_nr
    else:
        KT, VW = kernels.ddirect_kt, kernels.ddirect_vw
        MR, NR = kernels.dfilter_tile_mr, kernels.dfilter_tile_nr
    cdef Py_ssize_t flat_len = _flat_row_len(W, WO, FW, PW, DW, SH, SW, VW)
    cdef Py_ssize_t row_positions = flat_len if flat_len else (WO + VW - 1) // VW * VW
    cdef double pixel_vectors = (<double>KG / ((KG + KT - 1) // KT * KT)
                                 * WO / row_positions)
    cdef double filter_vectors = <double>KG / ((KG + NR - 1) // NR * NR)
    if not direct_wrapping_tiles(WO, isa, single):
        filter_vectors *= <double>WO / ((WO + MR - 1) // MR * MR)
    if _filter_tile_lane_speed(isa) * filter_vectors > pixel_vectors:
        return "filters"
    return "flat pixels" if flat_len else "pixels"


def direct_wrapping_tiles(Py_ssize_t WO, int isa, bint single):
    """Whether conv2d_direct's filter-vector tiles wrap from one output row to the next, so
    that only a block's last tile has idle pixels, instead of each row's last: with AVX2's
    6-pixel tiles, 14-pixel rows (vgg_conv5_2) keep 14 of 18 pixels busy by rows.

    A wrapping tile reads each pixel from its own base register; that measured as fast as the
    one-register tile with AVX2 (both ~93 GFLOP/s on an in-L1 band; vgg_conv5_2 forward went
    from 43 to 70 GFLOP/s at T=1 when the tiles began to wrap, as asv Conv2d across commit
    c3a7c75 or `python -m fastconv bench --cases vgg_conv5_2` shows), so AVX2 and the portable
    path wrap wherever rows leave pixels idle. The 14-pixel AVX-512 tile has more pixels than
    spare registers and was not measured wrapping (no AVX-512 machine at hand when this was
    written), so it wraps only where rows leave an eighth or more of its pixels idle: 7-pixel
    rows, not 13- or 55-pixel ones.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR = kernels.sfilter_tile_mr if single else kernels.dfilter_tile_mr
    cdef Py_ssize_t idle = (WO + MR - 1) // MR * MR - WO
    if isa == FC_ISA_AVX512:
        return idle * 8 >= (WO + MR - 1) // MR * MR
    return idle > 0


def direct_reads_x(Py_ssize_t KG, Py_ssize_t H, Py_ssize_t W, Py_ssize_t HO, Py_ssize_t WO,
                   Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                   Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int isa, bint single):
    """Whether conv2d_direct's tiles read x itself rather than a band copied from it: they are
    filter-vector tiles, output rows are whole tiles or the tiles wrap (a row's partial tile
    would read on past its row) and every window lies inside x (reads_inside_x)."""
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR = kernels.sfilter_tile_mr if single else kernels.dfilter_tile_mr
    return ((WO % MR == 0 or direct_wrapping_tiles(WO, isa, single))
            and reads_inside_x(H, W, HO, WO, FH, FW, SH, SW, PH, PW, DH, DW)
            and direct_tile_kind(KG, W, WO, FW, PW, DW, SH, SW, isa, single) == "filters")


def conv2d_direct(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                  const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                  Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                  Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads,
                  bint rotated=False):
    """y := conv2d(x, w) + bias by direct convolution: no column matrix.

    Register tiles of KT filters x 2 vectors of output pixels (vectorised along the output
    width, filters broadcast) run over a per-thread band: the input rows one block of output
    rows reads, zero-padded and split by stride phase (at unit stride, rows end to end when
    that computes fewer positions: _flat_row_len). A task is (image, group, block of output
    rows, part of the filters). Where tiles of MR pixels x NR filters (filters along the lanes,
    each pixel broadcast from the same band) leave fewer lanes idle, they run instead
    (direct_tile_kind); they take a block's outputs in row-major order, wrapping from one row
    to the next where rows would leave pixels idle (direct_wrapping_tiles), run each block of
    taps over a chunk of DIRECT_TILE_CHUNK tiles, and store each tile into y once. Groups
    with fewer filters than DIRECT_ROW_MAX_FILTERS would fill a tile mostly with padding; they
    take the row kernel.

    rotated: w holds a convolution's filters (groups*KG', CG', FH, FW) and this one runs with
    them as `rotate_filters` gives them (dx at unit stride), read so by the filter packing
    instead of from a rotated copy (a memory-bound pass: vgg_conv5_2's dx about 5% faster
    without it, asv Conv2dBackward.time_backward_input across commit ac3fabf).
    """
    cdef Py_ssize_t K = groups * w.shape[1] if rotated else w.shape[0]
    cdef Py_ssize_t CG = w.shape[0] // groups if rotated else w.shape[1]
    cdef bint band_fits = direct_band_fits(CG, w.shape[2], w.shape[3], y.shape[3], SW, DH, DW,
                                           sizeof(floating))
    if K // groups <= DIRECT_ROW_MAX_FILTERS or not band_fits:
        if rotated:
            w = rotate_filters(w, groups, num_threads)
        if band_fits:
            _conv2d_direct_single_filters(x, w, bias, has_bias, y, groups, SH, SW, PH, PW, DH,
                                          DW, isa, num_threads)
        else:
            _conv2d_direct_rows(x, w, bias, has_bias, y, groups, SH, SW, PH, PW, DH, DW,
                                num_threads)
        return
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t KT, VW, MR, NR
    cdef bint single = False
    if floating is float:
        single = True
        KT, VW = kernels.sdirect_kt, kernels.sdirect_vw
        MR, NR = kernels.sfilter_tile_mr, kernels.sfilter_tile_nr
    else:
        KT, VW = kernels.ddirect_kt, kernels.ddirect_vw
        MR, NR = kernels.dfilter_tile_mr, kernels.dfilter_tile_nr
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t FH = w.shape[2], FW = w.shape[3]
    cdef Py_ssize_t HO = y.shape[2], WO = y.shape[3], KG = K // groups, taps = CG * FH * FW
    cdef Py_ssize_t row_vectors = (WO + VW - 1) // VW, row_tiles = (WO + MR - 1) // MR
    cdef Py_ssize_t flat_len = _flat_row_len(W, WO, FW, PW, DW, SH, SW, VW)
    # Filter-vector tiles: blocks of NR filters, rows read in tiles of MR pixels, no flat rows.
    cdef bint filter_tiles = direct_tile_kind(KG, W, WO, FW, PW, DW, SH, SW, isa,
                                              single) == "filters"
    cdef Py_ssize_t read_width = row_vectors * VW
    # Filter-vector tiles may wrap from one output row to the next (direct_wrapping_tiles).
    cdef bint wrap = filter_tiles and direct_wrapping_tiles(WO, isa, single)
    if filter_tiles:
        KT, flat_len, read_width = NR, 0, WO if wrap else row_tiles * MR
    elif flat_len:
        read_width = flat_len - (FW - 1) * DW
    cdef BandLayout band_layout = _band_layout(CG, FH, FW, HO, read_width, SH, SW, DH, DW,
                                               sizeof(floating), K * taps * sizeof(floating))
    cdef Py_ssize_t phase_len = band_layout.phase_len, row_len = band_layout.row_len
    cdef Py_ssize_t rows_per_block = band_layout.rows_per_block
    cdef Py_ssize_t max_band_rows = band_layout.band_rows
    cdef Py_ssize_t row_blocks = (HO + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t k_blocks = (KG + KT - 1) // KT
    cdef Py_ssize_t blocks_per_part, k_parts
    blocks_per_part, k_parts = _split_rows(k_blocks, N * groups * row_blocks, 1)
    cdef floating[:, ::1] packed = _aligned_rows(groups * k_blocks, taps * KT, single)
    cdef bint x_is_band = direct_reads_x(KG, H, W, HO, WO, FH, FW, SH, SW, PH, PW, DH, DW, isa,
                                         single)
    # The tiles' rows and tap offsets: x's own, or the band's.
    cdef BandLayout read_layout = _x_as_band(H, W) if x_is_band else band_layout
    row_len = read_layout.row_len
    cdef Py_ssize_t[::1] tap_offset = _tap_offsets(read_layout, CG, FH, FW, SW, DH, DW)
    # Flat rows read past the band's last row: into the next channel's zeros, and past the last
    # channel into this tail (zeros, so no lane ever computes on stale or denormal values).
    cdef Py_ssize_t band_tail = row_len + VW if flat_len else 0
    cdef floating[:, ::1] bands = _aligned_rows(
        num_threads, 1 if x_is_band else CG * max_band_rows * row_len + band_tail, single, True)
    # A filter-vector tile sums its taps in a scratch block, then stores into y once.
    cdef floating[:, ::1] tiles = _aligned_rows(
        num_threads, FC_GEMM_MAX_TILE * DIRECT_TILE_CHUNK if filter_tiles else 1, single)
    cdef Py_ssize_t[:, ::1] pixel_offsets = np.empty(
        (num_threads, MR * DIRECT_TILE_CHUNK if filter_tiles else 1), dtype=np.intp)
    cdef Py_ssize_t *tile_pixels
    cdef Py_ssize_t tasks = N * groups * row_blocks * k_parts
    cdef Py_ssize_t t, n, g, rb, kp, ho0, rows, kb, kt, vectors, pair, v0, v1, span, r, j
    cdef Py_ssize_t wo0, wo1, tb, t0, x_at0, x_at1, y_at0, y_at1, chunk, c0, c1, i
    # Taps summed in registers per tile call, whole channels: the partial sums then go into y,
    # which keeps float32 rounding at the level of a blocked sum (one chain over all 4608 taps
    # of vgg_conv5_2 measured 4x the error of PyTorch's).
    cdef Py_ssize_t sum_taps = max(1, DIRECT_SUM_TAPS // (FH * FW)) * FH * FW
    cdef floating *band
    cdef const floating *rows_in
    cdef const floating *next_rows = NULL
    cdef Py_ssize_t prefetch_lines = 0, prefetched = 0, segment_lines = 1, lines_per_tile = 0
    cdef Py_ssize_t next_n, next_g, next_first, next_end
    cdef Py_ssize_t block_tiles = _block_tiles(rows_per_block, WO, MR, wrap), tile_outputs
    cdef Py_ssize_t tiles_per_band = max(1, min(blocks_per_part, k_blocks) * block_tiles)
    cdef floating *tile
    cdef floating *y_tile
    cdef unsigned lanes0, lanes1
    with nogil:
        for t in prange(groups * k_blocks, schedule="static", num_threads=num_threads):
            _pack_direct_filters(&w[0, 0, 0, 0] + (t // k_blocks) * KG * taps, KG, taps, KT,
                                 (t % k_blocks) * KT, &packed[t, 0],
                                 FH * FW if rotated else 0)
        # Tasks are handed out in order as threads free up, not split in equal halves up
        # front: on a shared host one vCPU often runs slower, and a static split waited for
        # it (ours / PyTorch at two threads, medians of alternating builds: alexnet_conv1
        # 1.29 -> 1.01, vgg_conv1_2 0.87 -> 0.81, dilated_3x3_d2 0.95 -> 0.88; asv Conv2d
        # at threads=2 across the commit that made it so compares the same).
        for t in prange(tasks, schedule="dynamic", num_threads=num_threads):
            kp = t % k_parts
            rb = (t // k_parts) % row_blocks
            g = (t // (k_parts * row_blocks)) % groups
            n = t // (k_parts * row_blocks * groups)
            ho0 = rb * rows_per_block
            rows = min(rows_per_block, HO - ho0)
            band = &bands[threadid(), 0]
            tile = &tiles[threadid(), 0]
            tile_pixels = &pixel_offsets[threadid(), 0]
            block_tiles = _block_tiles(rows, WO, MR, wrap)
            # Where it pays (_prefetches_next_band), the rows of x the next band (task
            # t + k_parts: this thread's next task at one thread, at two often the other's)
            # reads are prefetched while this band's tiles run, a share before each tile: on
            # demand, the tiles reading x itself wait on memory (each tap's row is its own
            # stream) and the band copy waits on each channel's rows.
            prefetch_lines = 0
            prefetched = 0
            if filter_tiles and t + k_parts < tasks and _prefetches_next_band(isa):
                next_n = (t + k_parts) // (k_parts * row_blocks * groups)
                next_g = (t + k_parts) // (k_parts * row_blocks) % groups
                next_first = (t + k_parts) // k_parts % row_blocks * rows_per_block * SH - PH
                next_end = min(H, next_first + max_band_rows)
                next_first = max(0, next_first)
                if next_end > next_first:
                    next_rows = &x[next_n, next_g * CG, next_first, 0]
                    segment_lines = ((next_end - next_first) * W * sizeof(floating) + 63) // 64
                    prefetch_lines = CG * segment_lines
                    lines_per_tile = (prefetch_lines + tiles_per_band - 1) // tiles_per_band
            if x_is_band:
                rows_in = &x[n, g * CG, ho0 * SH, 0]
            else:
                # Every band keeps max_band_rows rows per channel (the last block's extra rows
                # are zero-filled and never read), so one table of tap offsets serves all.
                _build_band(kernels, &x[n, g * CG, 0, 0], CG, H, W, ho0 * SH, max_band_rows,
                            PH, PW, SW, phase_len, band)
                rows_in = band
            # A filter block serves every tile of the band while its filters sit in cache.
            # (Splitting the taps into channel blocks whose band rows fit L1 measured slower:
            # vgg_conv1_2 +30%, its tiles then run too few taps per call.)
            for kb in range(kp * blocks_per_part, min(k_blocks, (kp + 1) * blocks_per_part)):
                kt = min(KT, KG - kb * KT)
                if filter_tiles:
                    for chunk in range((block_tiles + DIRECT_TILE_CHUNK - 1) // DIRECT_TILE_CHUNK):
                        c0 = chunk * DIRECT_TILE_CHUNK
                        c1 = min(block_tiles, c0 + DIRECT_TILE_CHUNK)
                        for i in range(c0, c1):
                            y_at0 = _filter_tile_outputs(i, wrap, MR, WO, rows, &tile_outputs)
                            _filter_tile_pixels(y_at0, tile_outputs, wrap, MR, WO, SH * row_len,
                                                &tile_pixels[(i - c0) * MR])
                        # The chunk's tiles share each block of taps' filters, read from L1.
                        for tb in range((taps + sum_taps - 1) // sum_taps):
                            t0 = tb * sum_taps
                            for i in range(c0, c1):
                                if prefetch_lines and tb == 0:
                                    _prefetch_channel_segments(
                                        next_rows, H * W, segment_lines, prefetched,
                                        min(prefetch_lines, prefetched + lines_per_tile))
                                    prefetched = prefetched + lines_per_tile
                                _direct_filter_tile(kernels, min(sum_taps, taps - t0),
                                                    &tap_offset[t0], rows_in,
                                                    &tile_pixels[(i - c0) * MR],
                                                    &packed[g * k_blocks + kb, t0 * KT],
                                                    tile + (i - c0) * MR * KT, tb > 0)
                        for i in range(c0, c1):
                            y_at0 = _filter_tile_outputs(i, wrap, MR, WO, rows, &tile_outputs)
                            _store_filter_tile(kernels, tile + (i - c0) * MR * KT, KT,
                                               tile_outputs, kt,
                                               &bias[g * KG + kb * KT] if has_bias else NULL,
                                               &y[n, g * KG + kb * KT, ho0, 0] + y_at0, HO * WO)
                    continue
                _fill_rows(&y[n, g * KG + kb * KT, ho0, 0], kt, HO * WO, rows * WO, &bias[0],
                           has_bias, g * KG + kb * KT)
                y_tile = &y[n, g * KG + kb * KT, ho0, 0]
                span = (rows - 1) * row_len + WO
                vectors = (span + VW - 1) // VW if flat_len else rows * row_vectors
                for pair in range((vectors + 1) // 2):
                    v0 = 2 * pair
                    v1 = min(v0 + 1, vectors - 1)
                    if flat_len:
                        x_at0, x_at1 = v0 * VW, v1 * VW
                        lanes0 = _flat_lanes(x_at0, row_len, WO, span, VW, &y_at0)
                        lanes1 = _flat_lanes(x_at1, row_len, WO, span, VW, &y_at1)
                    else:
                        wo0 = v0 % row_vectors * VW
                        wo1 = v1 % row_vectors * VW
                        x_at0 = v0 // row_vectors * SH * row_len + wo0
                        x_at1 = v1 // row_vectors * SH * row_len + wo1
                        y_at0 = v0 // row_vectors * WO + wo0
                        y_at1 = v1 // row_vectors * WO + wo1
                        lanes0 = (1u << min(VW, WO - wo0)) - 1
                        lanes1 = (1u << min(VW, WO - wo1)) - 1
                    if v1 == v0:
                        lanes1 = 0
                    for tb in range((taps + sum_taps - 1) // sum_taps):
                        t0 = tb * sum_taps
                        _direct_tile(kernels, min(sum_taps, taps - t0), &tap_offset[t0],
                                     band + x_at0, band + x_at1,
                                     &packed[g * k_blocks + kb, t0 * KT],
                                     y_tile + y_at0, y_tile + y_at1, HO * WO, kt, lanes0, lanes1)


cdef inline void _single_filter(const fc_kernel_table *kernels, Py_ssize_t taps,
                                const Py_ssize_t *tap_offset, const floating *x,
                                const floating *w, floating *y, Py_ssize_t rows,
                                Py_ssize_t row_vectors, Py_ssize_t x_row_stride,
                                Py_ssize_t y_row_stride, bint accumulate) noexcept nogil:
    if floating is float:
        kernels.sdirect_single_filter(taps, tap_offset, x, w, y, rows, row_vectors,
                                      x_row_stride, y_row_stride, accumulate)
    else:
        kernels.ddirect_single_filter(taps, tap_offset, x, w, y, rows, row_vectors,
                                      x_row_stride, y_row_stride, accumulate)


cdef void _conv2d_direct_single_filters(const floating[:, :, :, ::1] x,
                                        const floating[:, :, :, ::1] w,
                                        const floating[::1] bias, bint has_bias,
                                        floating[:, :, :, ::1] y, Py_ssize_t groups,
                                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                                        Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int isa,
                                        int num_threads):
    """Direct convolution for groups of few filters (depthwise layers: one), one filter at a
    time with pixels along the vector lanes (the single-filter kernel).

    A task is a block of output rows of one image's group: its input rows go into a padded
    band as for the register tiles (flat rows at unit stride: a block's outputs are then one
    run of band positions, so even a 7-pixel row fills most of a vector), each filter's sums
    over its taps go into a per-thread scratch block, whole channels' taps per kernel call as in
    conv2d_direct, and the block's WO-pixel rows are copied from there into y with the bias.
    The row kernel this replaced ran a 14-pixel row per call through scalar-width loops:
    MobileNet's 3x3 depthwise layers ran at 2-8 GFLOP/s, 1.6-4.3x PyTorch's time (asv
    Conv2dFewFiltersPerGroup tracks them; `python tools/network_layers.py` compares them with
    PyTorch).
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef bint single = floating is float
    cdef Py_ssize_t VW = kernels.sdirect_vw if floating is float else kernels.ddirect_vw
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = w.shape[0], CG = w.shape[1], FH = w.shape[2], FW = w.shape[3]
    cdef Py_ssize_t HO = y.shape[2], WO = y.shape[3], KG = K // groups, taps = CG * FH * FW
    cdef Py_ssize_t row_vectors = (WO + VW - 1) // VW
    cdef Py_ssize_t flat_len = _flat_row_len(W, WO, FW, PW, DW, SH, SW, VW)
    cdef Py_ssize_t read_width = flat_len - (FW - 1) * DW if flat_len else row_vectors * VW
    cdef BandLayout layout = _band_layout(CG, FH, FW, HO, read_width, SH, SW, DH, DW,
                                          sizeof(floating), K * taps * sizeof(floating))
    cdef Py_ssize_t phase_len = layout.phase_len, row_len = layout.row_len
    cdef Py_ssize_t rows_per_block = layout.rows_per_block, band_rows = layout.band_rows
    cdef Py_ssize_t row_blocks = (HO + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t[::1] tap_offset = _tap_offsets(layout, CG, FH, FW, SW, DH, DW)
    # Flat runs read past the band's last row: into the next channel's zeros, and past the
    # last channel into this tail (zeros, so no lane ever computes on stale values).
    cdef Py_ssize_t band_tail = row_len + VW if flat_len else 0
    cdef floating[:, ::1] bands = _aligned_rows(num_threads, CG * band_rows * row_len + band_tail,
                                                single, True)
    # Flat: the block's run of positions, rounded up to whole vectors; else rows of vectors.
    cdef Py_ssize_t sums_len = (((rows_per_block - 1) * row_len + WO + VW - 1) // VW * VW
                                if flat_len else rows_per_block * row_vectors * VW)
    cdef floating[:, ::1] sums = _aligned_rows(num_threads, sums_len, single)
    cdef Py_ssize_t sum_taps = max(1, DIRECT_SUM_TAPS // (FH * FW)) * FH * FW
    cdef Py_ssize_t tasks = N * groups * row_blocks
    cdef Py_ssize_t t, n, g, rb, ho0, rows, k, tb, t0, r, wo, item_rows, vectors, x_stride
    cdef Py_ssize_t sums_stride
    cdef floating b
    cdef floating *band
    cdef floating *out
    cdef floating *y_rows
    with nogil:
        for t in prange(tasks, schedule="dynamic", num_threads=num_threads):
            rb = t % row_blocks
            g = (t // row_blocks) % groups
            n = t // (row_blocks * groups)
            ho0 = rb * rows_per_block
            rows = min(rows_per_block, HO - ho0)
            band = &bands[threadid(), 0]
            out = &sums[threadid(), 0]
            # One block per image: every band this thread builds has the same layout, so its
            # zeros (from the allocation) stay where they are.
            _build_band(kernels, &x[n, g * CG, 0, 0], CG, H, W, ho0 * SH, band_rows, PH, PW, SW,
                        phase_len, band, row_blocks > 1)
            if flat_len:
                item_rows = 1
                vectors = ((rows - 1) * row_len + WO + VW - 1) // VW
                x_stride = 0
                sums_stride = row_len
            else:
                item_rows = rows
                vectors = row_vectors
                x_stride = SH * row_len
                sums_stride = row_vectors * VW
            for k in range(g * KG, (g + 1) * KG):
                for tb in range((taps + sum_taps - 1) // sum_taps):
                    t0 = tb * sum_taps
                    _single_filter(kernels, min(sum_taps, taps - t0), &tap_offset[t0], band,
                                   &w[k, 0, 0, 0] + t0, out, item_rows, vectors, x_stride,
                                   sums_stride, tb > 0)
                b = bias[k] if has_bias else 0
                y_rows = &y[n, k, ho0, 0]
                for r in range(rows):
                    for wo in range(WO):
                        y_rows[r * WO + wo] = out[r * sums_stride + wo] + b


cdef void _conv2d_direct_rows(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                              const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                              Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                              Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int num_threads):
    """Direct convolution for groups of few filters (depthwise layers): one task per (n, group,
    filter block, ho), the row kernel reading each input row once for its block of filters."""
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = w.shape[0], CG = w.shape[1], FH = w.shape[2], FW = w.shape[3]
    cdef Py_ssize_t HO = y.shape[2], WO = y.shape[3]
    cdef Py_ssize_t KG = K // groups
    cdef Py_ssize_t k_blocks = (KG + DIRECT_FILTER_BLOCK - 1) // DIRECT_FILTER_BLOCK
    cdef Py_ssize_t tasks = N * groups * HO * k_blocks
    cdef Py_ssize_t t, n, g, ho, k0, kb
    cdef const floating *x_image
    cdef floating *y_row
    with nogil:
        # Filter blocks innermost: consecutive tasks of a thread reuse the same input rows.
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            k0 = (t % k_blocks) * DIRECT_FILTER_BLOCK
            ho = (t // k_blocks) % HO
            g = (t // (k_blocks * HO)) % groups
            n = t // (k_blocks * HO * groups)
            kb = min(DIRECT_FILTER_BLOCK, KG - k0)
            k0 = k0 + g * KG
            x_image = &x[0, 0, 0, 0] + (n * groups + g) * CG * H * W
            y_row = &y[0, 0, 0, 0] + ((n * K + k0) * HO + ho) * WO
            _fill_rows(y_row, kb, HO * WO, WO, &bias[0], has_bias, k0)
            if floating is float:
                fc_sconv2d_direct_row__generic(
                    x_image, &w[0, 0, 0, 0] + k0 * CG * FH * FW, y_row, kb, HO * WO,
                    CG, H, W, FH, FW, WO, ho, SH, SW, PH, PW, DH, DW)
            else:
                fc_dconv2d_direct_row__generic(
                    x_image, &w[0, 0, 0, 0] + k0 * CG * FH * FW, y_row, kb, HO * WO,
                    CG, H, W, FH, FW, WO, ho, SH, SW, PH, PW, DH, DW)


def conv2d_im2col(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                  const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                  Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                  Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """y := conv2d(x, w) + bias as y_g = W_g @ col per image and group.

    The column matrix is never built whole: a task (image, group, block of pixels, block of
    filters) builds GEMM_KC rows of its pixels' columns at a time, straight into packed panels in
    a per-thread workspace of fixed size.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    MR, NR = _micro_tile(kernels, floating is float)
    cdef Py_ssize_t N = x.shape[0], CG = w.shape[1], K = w.shape[0]
    cdef ConvShape s = _conv_shape(x.shape[2], x.shape[3], w.shape[2], w.shape[3], y.shape[2],
                                   y.shape[3], SH, SW, PH, PW, DH, DW)
    cdef Py_ssize_t KG = K // groups, R = CG * s.FH * s.FW, P = s.HO * s.WO
    cdef Py_ssize_t NC = GEMM_NC_PANELS * NR, MC = GEMM_MC_PANELS * MR
    cdef Py_ssize_t pixel_blocks = (P + NC - 1) // NC
    cdef Py_ssize_t rows_per_task, row_tasks
    rows_per_task, row_tasks = _split_rows(KG, N * groups * pixel_blocks, MR)
    cdef Py_ssize_t a_size = MC * GEMM_KC, b_size = NC * GEMM_KC
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, a_size + b_size + FC_GEMM_MAX_TILE, floating is float)
    cdef Py_ssize_t tasks = N * groups * pixel_blocks * row_tasks
    cdef Py_ssize_t t, n, g, pb, mt, p0, nc, m_begin, m_end, kb, k0, kc, mb, m0, mc
    cdef floating *a_packed
    cdef floating *b_packed
    cdef floating *y_block
    cdef const floating *x_image
    cdef const floating *w_group
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            a_packed = &workspace[threadid(), 0]
            b_packed = a_packed + a_size
            mt = t % row_tasks
            pb = (t // row_tasks) % pixel_blocks
            g = (t // (row_tasks * pixel_blocks)) % groups
            n = t // (row_tasks * pixel_blocks * groups)
            p0 = pb * NC
            nc = min(NC, P - p0)
            m_begin = mt * rows_per_task
            m_end = min(KG, m_begin + rows_per_task)
            x_image = &x[0, 0, 0, 0] + (n * groups + g) * CG * s.H * s.W
            w_group = &w[0, 0, 0, 0] + g * KG * R
            y_block = &y[0, 0, 0, 0] + (n * K + g * KG + m_begin) * P + p0
            _fill_rows(y_block, m_end - m_begin, P, nc, &bias[0], has_bias, g * KG + m_begin)
            for kb in range((R + GEMM_KC - 1) // GEMM_KC):
                k0 = kb * GEMM_KC
                kc = min(GEMM_KC, R - k0)
                _pack_im2col(kernels, x_image, &s, k0, kc, p0, nc, NR, b_packed)
                for mb in range((m_end - m_begin + MC - 1) // MC):
                    m0 = m_begin + mb * MC
                    mc = min(MC, m_end - m0)
                    _pack_a(kernels, w_group + m0 * R + k0, R, mc, kc, MR, a_packed)
                    _gemm_packed_block(kernels, MR, NR, mc, nc, kc, a_packed, b_packed,
                                       y_block + (m0 - m_begin) * P, P, b_packed + b_size)


cdef void _pack_im2col_over_batch(const fc_kernel_table *kernels, const floating *x,
                                  Py_ssize_t image_stride, const ConvShape *s, Py_ssize_t k0,
                                  Py_ssize_t kc, Py_ssize_t q0, Py_ssize_t qc, Py_ssize_t MR,
                                  floating *packed) noexcept nogil:
    """A = col[k0:k0+kc, q0:q0+qc]^T packed into MR-row panels, where column q of col is pixel
    q % P of image q // P (the images lie image_stride elements apart): the rows of A are the
    batch's output pixels, whatever image they come from."""
    cdef Py_ssize_t P = s.HO * s.WO
    cdef Py_ssize_t panel, rows, q, run
    cdef floating *dst
    for panel in range((qc + MR - 1) // MR):
        rows = min(MR, qc - panel * MR)
        dst = packed + panel * kc * MR
        if rows < MR:
            memset(dst, 0, kc * MR * sizeof(floating))
        q = q0 + panel * MR
        while q < q0 + panel * MR + rows:
            run = min(P - q % P, q0 + panel * MR + rows - q)
            _im2col_tile(kernels, x + (q // P) * image_stride, s, k0, kc, q % P, run, MR,
                         dst + q - (q0 + panel * MR))
            q = q + run


cdef struct SmallPlaneTask:
    # A task of the GEMMs over the batch's pixels: group g, pixels [q0, q0 + qc) of the batch,
    # filters [f_begin, f_begin + nf) of the group.
    Py_ssize_t g, q0, qc, f_begin, nf


cdef inline SmallPlaneTask _small_plane_task(Py_ssize_t t, Py_ssize_t filter_tasks,
                                             Py_ssize_t pixel_blocks, Py_ssize_t QB,
                                             Py_ssize_t Q, Py_ssize_t filters_per_task,
                                             Py_ssize_t KG) noexcept nogil:
    """Task t, filter blocks varying fastest (consecutive tasks share a block of pixels)."""
    cdef SmallPlaneTask task
    task.g = t // (filter_tasks * pixel_blocks)
    task.q0 = (t // filter_tasks) % pixel_blocks * QB
    task.qc = min(QB, Q - task.q0)
    task.f_begin = t % filter_tasks * filters_per_task
    task.nf = min(KG - task.f_begin, filters_per_task)
    return task


cdef void _store_small_plane(floating *y, const floating *c, Py_ssize_t q_stride,
                             Py_ssize_t f_stride, SmallPlaneTask task, Py_ssize_t KG,
                             Py_ssize_t K, Py_ssize_t P) noexcept nogil:
    """y[n, g*KG + f_begin + f, p] = c[q*q_stride + f*f_stride] for the task's pixels
    q0 + q = n*P + p and filters f < nf."""
    cdef Py_ssize_t q, f, n, p
    cdef floating *y_row
    for q in range(task.qc):
        n = (task.q0 + q) // P
        p = (task.q0 + q) % P
        y_row = y + (n * K + task.g * KG + task.f_begin) * P + p
        for f in range(task.nf):
            y_row[f * P] = c[q * q_stride + f * f_stride]


def conv2d_im2col_over_batch(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                             const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                             Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                             Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int isa,
                             int num_threads):
    """y := conv2d(x, w) + bias as the transposed product y_g^T = col_g^T @ W_g^T, whose rows
    are the output pixels of the whole batch (for layers with few output pixels per image).

    `conv2d_im2col` gives each image's pixels the micro-kernel's NR-wide side, so an image of
    36 pixels fills two 32-wide tiles; here the batch's pixels take the MR-high side in one run
    and the filters the NR-wide one (they come in multiples of 8 or 16 in real layers). Each
    packed panel of filters serves all GEMM_MC_PANELS panels of pixels of a task, so the
    filters are read from memory once per block of pixels, not once per image. Results are
    bit-identical to `conv2d_im2col`'s: every output is the bias plus the same GEMM_KC-long
    blocks of products, summed in the same order.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    MR, NR = _micro_tile(kernels, floating is float)
    cdef Py_ssize_t N = x.shape[0], CG = w.shape[1], K = w.shape[0]
    cdef ConvShape s = _conv_shape(x.shape[2], x.shape[3], w.shape[2], w.shape[3], y.shape[2],
                                   y.shape[3], SH, SW, PH, PW, DH, DW)
    cdef Py_ssize_t KG = K // groups, R = CG * s.FH * s.FW, P = s.HO * s.WO, Q = N * P
    cdef Py_ssize_t QB = GEMM_MC_PANELS * MR, FT = GEMM_OVER_BATCH_FILTER_PANELS * NR
    cdef Py_ssize_t pixel_blocks = (Q + QB - 1) // QB
    cdef Py_ssize_t filters_per_task, filter_tasks
    filters_per_task, filter_tasks = _split_rows(KG, groups * pixel_blocks, NR,
                                                 GEMM_OVER_BATCH_MIN_TASKS)
    if filters_per_task > FT:
        filters_per_task, filter_tasks = FT, (KG + FT - 1) // FT
    cdef Py_ssize_t a_size = QB * GEMM_KC, b_size = NR * GEMM_KC, c_size = QB * FT
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, a_size + b_size + c_size, floating is float)
    cdef Py_ssize_t tasks = groups * pixel_blocks * filter_tasks
    cdef Py_ssize_t t, ldt, kb, k0, kc, jr, ir, q, f
    cdef SmallPlaneTask task
    cdef floating *a_packed
    cdef floating *b_packed
    cdef floating *c_rows
    cdef const floating *x_group
    cdef const floating *w_filters
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            a_packed = &workspace[threadid(), 0]
            b_packed = a_packed + a_size
            c_rows = b_packed + b_size
            task = _small_plane_task(t, filter_tasks, pixel_blocks, QB, Q, filters_per_task, KG)
            ldt = (task.nf + NR - 1) // NR * NR
            x_group = &x[0, 0, 0, 0] + task.g * CG * s.H * s.W
            w_filters = &w[0, 0, 0, 0] + (task.g * KG + task.f_begin) * R
            # Rows of C^T start as the bias, so the sum runs in conv2d_im2col's order.
            for q in range((task.qc + MR - 1) // MR * MR):
                for f in range(ldt):
                    c_rows[q * ldt + f] = (bias[task.g * KG + task.f_begin + f]
                                           if has_bias and f < task.nf else 0)
            for kb in range((R + GEMM_KC - 1) // GEMM_KC):
                k0 = kb * GEMM_KC
                kc = min(GEMM_KC, R - k0)
                _pack_im2col_over_batch(kernels, x_group, groups * CG * s.H * s.W, &s, k0, kc,
                                        task.q0, task.qc, MR, a_packed)
                for jr in range(ldt // NR):
                    _pack_a(kernels, w_filters + jr * NR * R + k0, R,
                            min(NR, task.nf - jr * NR), kc, NR, b_packed)
                    for ir in range((task.qc + MR - 1) // MR):
                        _ukernel(kernels, kc, a_packed + ir * MR * kc, b_packed,
                                 c_rows + ir * MR * ldt + jr * NR, ldt, 1)
            _store_small_plane(&y[0, 0, 0, 0], c_rows, ldt, 1, task, KG, K, P)


cdef inline void _stream_ukernel(const fc_kernel_table *kernels, Py_ssize_t kc,
                                 const floating *w, Py_ssize_t w_row_stride, const floating *b,
                                 Py_ssize_t b_row_stride, floating *c, Py_ssize_t ldc,
                                 Py_ssize_t columns, const floating *b_prefetch,
                                 int store=FC_STORE_ADD) noexcept nogil:
    if floating is float:
        kernels.sgemm_stream_ukernel(kc, w, w_row_stride, b, b_row_stride, c, ldc, columns,
                                     b_prefetch, store)
    else:
        kernels.dgemm_stream_ukernel(kc, w, w_row_stride, b, b_row_stride, c, ldc, columns,
                                     b_prefetch, store)


cdef void _copy_padded_rows(const floating *src, Py_ssize_t row_stride, Py_ssize_t rows,
                            Py_ssize_t MR, Py_ssize_t kc, floating *dst) noexcept nogil:
    """dst (MR x kc, rows kc apart) := the first kc elements of src's `rows` rows, then zero
    rows: the streaming kernel reads MR whole rows, so a partial block is read from this."""
    cdef Py_ssize_t i
    for i in range(MR):
        if i < rows:
            memcpy(dst + i * kc, src + i * row_stride, kc * sizeof(floating))
        else:
            memset(dst + i * kc, 0, kc * sizeof(floating))


cdef void _stream_broadcast_block(const fc_kernel_table *kernels, Py_ssize_t kc,
                                  const floating *w, Py_ssize_t R, Py_ssize_t nf, Py_ssize_t MR,
                                  Py_ssize_t NR, const floating *b_packed, Py_ssize_t qc,
                                  floating *c, Py_ssize_t ldc,
                                  floating *edge_rows) noexcept nogil:
    """c[0:nf, 0:qc] += w[0:nf, 0:kc] (rows R apart) @ the qc pixels packed in NR-wide panels,
    one kernel call per GEMM_KC taps (each call's sums go into c, so the blocks are the packed
    GEMMs'), the calls for one block of rows in a row: each row is read in one run of kc. A last
    partial block of rows is read from a zero-padded copy (edge_rows: MR x kc)."""
    cdef Py_ssize_t fr, rows, i, panel, w_stride, block, k0
    cdef const floating *w_rows
    for fr in range((nf + MR - 1) // MR):
        rows = min(MR, nf - fr * MR)
        w_rows = w + fr * MR * R
        w_stride = R
        if rows < MR:
            _copy_padded_rows(w_rows, R, rows, MR, kc, edge_rows)
            w_rows = edge_rows
            w_stride = kc
        for panel in range((qc + NR - 1) // NR):
            for block in range((kc + GEMM_KC - 1) // GEMM_KC):
                k0 = block * GEMM_KC
                _stream_ukernel(kernels, min(GEMM_KC, kc - k0), w_rows + k0, w_stride,
                                b_packed + (panel * kc + k0) * NR, NR,
                                c + fr * MR * ldc + panel * NR, ldc, min(NR, qc - panel * NR),
                                NULL)


cdef inline bint _uses_few_pixel_kernel(const fc_kernel_table *kernels, Py_ssize_t Q,
                                        bint single) noexcept nogil:
    """Whether conv2d_im2col_streaming_filters runs Q pixels (over the batch) through the
    few-pixel kernel rather than the broadcasting one."""
    if Q > GEMM_FEW_PIXELS:
        return False
    return (kernels.sgemm_few_pixels_ukernel != NULL if single
            else kernels.dgemm_few_pixels_ukernel != NULL)


def streaming_uses_few_pixel_kernel(Py_ssize_t Q, int isa, bint single):
    """Whether `conv2d_im2col_streaming_filters` gives Q pixels over the batch the few-pixel
    kernel (where the ISA path has one and Q <= GEMM_FEW_PIXELS)."""
    return _uses_few_pixel_kernel(fc_kernel_table_for(isa), Q, single)


def gemm_few_pixels(const floating[:, ::1] w, Py_ssize_t rows, Py_ssize_t kc,
                    const floating[:, ::1] b, Py_ssize_t pixels, int isa, floating[:, ::1] c):
    """c[:rows, :pixels] += w[:rows, :kc] @ b[:kc, :pixels] by the ISA path's few-pixel
    micro-kernel alone, for its tests (rows at most its MR)."""
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef int MR = kernels.sgemm_few_pixels_mr if floating is float else kernels.dgemm_few_pixels_mr
    if MR == 0:
        raise ValueError("gemm_few_pixels: this ISA has no few-pixel kernel")
    if not (1 <= rows <= min(MR, w.shape[0], c.shape[0]) and 1 <= kc <= min(w.shape[1], b.shape[0])
            and 1 <= pixels <= min(b.shape[1], c.shape[1])):
        raise ValueError("gemm_few_pixels: rows, kc or pixels out of range")
    if floating is float:
        kernels.sgemm_few_pixels_ukernel(kc, &w[0, 0], w.shape[1], rows, &b[0, 0], b.shape[1],
                                         pixels, &c[0, 0], c.shape[1])
    else:
        kernels.dgemm_few_pixels_ukernel(kc, &w[0, 0], w.shape[1], rows, &b[0, 0], b.shape[1],
                                         pixels, &c[0, 0], c.shape[1])


cdef void _few_pixels_block(const fc_kernel_table *kernels, Py_ssize_t kc, const floating *w,
                            Py_ssize_t R, Py_ssize_t nf, Py_ssize_t MR,
                            const floating *b_packed, Py_ssize_t b_row_stride,
                            Py_ssize_t pixels, floating *c, Py_ssize_t ldc) noexcept nogil:
    """c[0:nf, 0:pixels] += w[0:nf, 0:kc] (rows R apart) @ b_packed's kc rows of pixels, MR
    rows at a time, one few-pixel kernel call per GEMM_KC taps (the packed GEMMs' blocks): each
    row is read in one run of kc, MR rows side by side. The kernel reads no row past nf; the
    pixels are b_packed's first panel (b_row_stride apart)."""
    cdef Py_ssize_t fr, block, k0, rows
    for fr in range((nf + MR - 1) // MR):
        rows = min(MR, nf - fr * MR)
        for block in range((kc + GEMM_KC - 1) // GEMM_KC):
            k0 = block * GEMM_KC
            if floating is float:
                kernels.sgemm_few_pixels_ukernel(
                    min(GEMM_KC, kc - k0), w + fr * MR * R + k0, R, rows,
                    b_packed + k0 * b_row_stride, b_row_stride, pixels, c + fr * MR * ldc, ldc)
            else:
                kernels.dgemm_few_pixels_ukernel(
                    min(GEMM_KC, kc - k0), w + fr * MR * R + k0, R, rows,
                    b_packed + k0 * b_row_stride, b_row_stride, pixels, c + fr * MR * ldc, ldc)


# Filters of at least this many bytes per group are read from memory on every call (no L2, nor
# a fair share of a shared L3, holds them): then streaming them can pay.
GEMM_STREAM_MIN_FILTER_BYTES = 16 << 20


def gemm_streams_filters(Py_ssize_t Q, Py_ssize_t filter_bytes, int isa, bint single):
    """True when a small-plane layer (Q output pixels over the batch, filter_bytes of filters
    per group) runs `conv2d_im2col_streaming_filters` rather than `conv2d_im2col_over_batch`.
    Both give the same bits, so the choice may depend on the batch.

    Streaming needs filters that come from memory anyway (GEMM_STREAM_MIN_FILTER_BYTES) and a
    streaming kernel (AVX2, AVX-512). With AVX-512 float32 the packed GEMM (16x16 transposing
    pack, 14-pixel rows) keeps its lane advantage, so streaming must not compute more than 8/7
    of its rows, counted in whole 48-pixel panels against 14-pixel rows. The ratios were
    measured on one core when a last panel still ran three vectors, as the rule counts (it now
    runs one or two where fewer pixels are left; not yet measured on AVX-512, so the rule was
    left as measured). Streaming / packed, asv Conv2dSmallPlaneDrivers re-measures Q=36, 64
    and 288: Q=36 48 vs 42 lanes 0.72x; Q=288 288 vs 294 0.95-1.0x; Q=64 96 vs 70 1.13x;
    Q=98 144 vs 98 1.25x; Q=196 240 vs 196 1.09x; Q=1 and Q=8 1.3-1.4x. Elsewhere streaming
    measured as fast or faster for every Q. AVX-512 float64 (scalar pack): 0.44-0.63x from Q=1
    to 288. AVX2, whose pack is vectorised too (8x8 transposes), the two drivers alternating
    in one process at one thread on 7x7x512 filters: the broadcasting kernel 0.77-1.01x in
    float32 and 0.72-0.99x in float64 for Q=8 to 288; the few-pixel kernel (Q <= 4)
    0.54-0.68x in both dtypes (Q=1, 2, 4; 4096 float or 2048 double filters).
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef bint has_kernel
    cdef Py_ssize_t stream_columns, packed_rows
    if single:
        has_kernel = kernels.sgemm_stream_ukernel != NULL
        stream_columns, packed_rows = kernels.sgemm_stream_nr, kernels.sgemm_mr
    else:
        has_kernel = kernels.dgemm_stream_ukernel != NULL
        stream_columns, packed_rows = kernels.dgemm_stream_nr, kernels.dgemm_mr
    if not has_kernel or filter_bytes < GEMM_STREAM_MIN_FILTER_BYTES:
        return False
    return not (isa == FC_ISA_AVX512 and single) or (
        7 * ((Q + stream_columns - 1) // stream_columns * stream_columns)
        <= 8 * ((Q + packed_rows - 1) // packed_rows * packed_rows))


def conv2d_im2col_streaming_filters(const floating[:, :, :, ::1] x,
                                    const floating[:, :, :, ::1] w, const floating[::1] bias,
                                    bint has_bias, floating[:, :, :, ::1] y, Py_ssize_t groups,
                                    Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                                    Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """y := conv2d(x, w) + bias as y_g = W_g @ col_g, reading the filters W_g where they lie,
    for layers whose filters dwarf their pixels (an FC layer as a 7x7 convolution: 411 MB of
    filters against 36 output pixels).

    Such a layer's time is the filters' stream from memory plus the FMAs, and only overlapping
    the two brings it near either. `conv2d_im2col_over_batch` first packs each panel of filters
    (a transposing pass that waits on memory, then the FMAs). Here the micro-kernel broadcasts
    MR filters' taps straight from their rows, so the hardware prefetchers stream them while
    the FMAs run, against the batch's pixels packed NR to a panel along the vector lanes (48
    floats with AVX-512). A task owns a block of filters and a block of up to
    GEMM_STREAM_PIXEL_PANELS pixel panels; each filter's block of taps is read from memory once
    per pixel block and from cache for its other panels.

    With at most GEMM_FEW_PIXELS pixels (an FC layer at batch 1: VGG's fc6 on 7x7 maps), the
    broadcasting kernel would run one FMA chain per filter row, bound by the FMA latency. Where
    the path has the few-pixel kernel (AVX2), it reads 2 vectors' worth of filter rows at once
    instead (16 floats, 8 doubles), turns them around in registers and keeps a chain per
    vector of filters, so the filters' stream from memory sets the pace. Few-pixel /
    broadcasting kernel, tools/ab_builds.py (the two alternating in one process): fc6 at batch 1
    (1x512x7x7, 4096 filters) 39 / 61 ms at one thread, 23 / 36 ms at two; batch 4 49 / 63 and
    25 / 32 (PyTorch's conv2d: 270-430 ms).

    Every output is the bias plus the same GEMM_KC-long blocks of products, each summed from
    zero in increasing order, as in `conv2d_im2col` and `conv2d_im2col_over_batch`: the bits
    depend on neither the batch nor the thread count.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    cdef Py_ssize_t N = x.shape[0], CG = w.shape[1], K = w.shape[0]
    cdef ConvShape s = _conv_shape(x.shape[2], x.shape[3], w.shape[2], w.shape[3], y.shape[2],
                                   y.shape[3], SH, SW, PH, PW, DH, DW)
    cdef Py_ssize_t KG = K // groups, R = CG * s.FH * s.FW, P = s.HO * s.WO, Q = N * P
    if (kernels.sgemm_stream_ukernel == NULL if floating is float
            else kernels.dgemm_stream_ukernel == NULL):
        raise ValueError("conv2d_im2col_streaming_filters: this ISA has no streaming kernel")
    if floating is float:
        MR, NR = kernels.sgemm_stream_mr, kernels.sgemm_stream_nr
    else:
        MR, NR = kernels.dgemm_stream_mr, kernels.dgemm_stream_nr
    # The few-pixel kernel runs on blocks of its MR filter rows; the pixels (one panel, as
    # Q <= GEMM_FEW_PIXELS <= NR) are packed as for streaming.
    cdef bint few_pixels = _uses_few_pixel_kernel(kernels, Q, floating is float)
    if few_pixels:
        MR = kernels.sgemm_few_pixels_mr if floating is float else kernels.dgemm_few_pixels_mr
    cdef Py_ssize_t panels = min((Q + NR - 1) // NR, GEMM_STREAM_PIXEL_PANELS)
    cdef Py_ssize_t QB = panels * NR, pixel_blocks = (Q + QB - 1) // QB
    cdef Py_ssize_t KC = max(1, GEMM_STREAM_TAPS // panels // GEMM_KC) * GEMM_KC
    cdef Py_ssize_t FT = max(MR, GEMM_STREAM_C_BYTES // (QB * <Py_ssize_t>sizeof(floating))
                             // MR * MR)
    cdef Py_ssize_t filters_per_task, filter_tasks
    filters_per_task, filter_tasks = _split_rows(KG, groups * pixel_blocks, MR,
                                                 GEMM_OVER_BATCH_MIN_TASKS)
    if filters_per_task > FT:
        filter_tasks = (KG + FT - 1) // FT
        filters_per_task = ((KG + filter_tasks - 1) // filter_tasks + MR - 1) // MR * MR
        filter_tasks = (KG + filters_per_task - 1) // filters_per_task
    # Per thread: the packed pixels, the task's outputs (filters x pixels) and, for the
    # broadcasting kernel (which reads MR whole rows), MR rows of taps: the copy a last partial
    # row block is read from.
    cdef Py_ssize_t b_size = QB * KC, edge_size = 0 if few_pixels else MR * KC
    cdef Py_ssize_t c_size = (filters_per_task + MR - 1) // MR * MR * QB
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, b_size + c_size + edge_size, floating is float)
    cdef Py_ssize_t tasks = groups * pixel_blocks * filter_tasks
    cdef Py_ssize_t t, kb, k0, kc, q, f
    cdef Py_ssize_t image_stride = groups * CG * s.H * s.W
    cdef SmallPlaneTask task
    cdef floating *b_packed
    cdef floating *c_rows
    cdef floating *edge_rows
    cdef const floating *x_group
    cdef const floating *w_filters
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            b_packed = &workspace[threadid(), 0]
            c_rows = b_packed + b_size
            edge_rows = c_rows + c_size
            task = _small_plane_task(t, filter_tasks, pixel_blocks, QB, Q, filters_per_task, KG)
            x_group = &x[0, 0, 0, 0] + task.g * CG * s.H * s.W
            w_filters = &w[0, 0, 0, 0] + (task.g * KG + task.f_begin) * R
            # Outputs start as the bias, then take the GEMM_KC-long blocks' sums in order (rows
            # past nf, up to a whole row block, start at 0: the broadcasting kernel writes them,
            # nothing reads them).
            _fill_rows(c_rows, task.nf, QB, QB, &bias[0], has_bias, task.g * KG + task.f_begin)
            _fill_rows(c_rows + task.nf * QB, (task.nf + MR - 1) // MR * MR - task.nf, QB, QB,
                       &bias[0], False, 0)
            for kb in range((R + KC - 1) // KC):
                k0 = kb * KC
                kc = min(KC, R - k0)
                _pack_im2col_over_batch(kernels, x_group, image_stride, &s, k0, kc, task.q0,
                                        task.qc, NR, b_packed)
                if few_pixels:
                    _few_pixels_block(kernels, kc, w_filters + k0, R, task.nf, MR, b_packed,
                                      NR, task.qc, c_rows, QB)
                else:
                    _stream_broadcast_block(kernels, kc, w_filters + k0, R, task.nf, MR, NR,
                                            b_packed, task.qc, c_rows, QB, edge_rows)
            _store_small_plane(&y[0, 0, 0, 0], c_rows, 1, QB, task, KG, K, P)

cdef void _pointwise_panel(const fc_kernel_table *kernels, Py_ssize_t MR, Py_ssize_t NR,
                           const floating *x_plane, Py_ssize_t CG, Py_ssize_t P, Py_ssize_t p0,
                           Py_ssize_t cols, const floating *w_rows, Py_ssize_t nf,
                           floating *y_rows, floating *scratch,
                           bint has_bias) noexcept nogil:
    """y_rows[f*P + p0 + j] += sum_c w_rows[f*CG + c] * x_plane[c*P + p0 + j] for the nf filters
    and the cols <= NR pixels from p0 (= for the first block of channels when not has_bias: y
    then holds no bias to add to), one streaming-kernel call per GEMM_KC channels and MR
    filters. scratch: GEMM_KC*NR + MR*GEMM_KC + MR*NR elements.

    Each block of x's rows serves the calls for every filter while it is in cache. x's CG rows
    lie a plane apart, more streams than the hardware prefetchers follow, so the calls prefetch
    the next panel's lines of those rows, one line per channel each (the first ceil(NR/line) + 1
    calls: NR pixels can straddle one line more than they fill). Prefetching the lines of y the
    next panel writes as well measured 4% slower (asv Conv2dPointwise across commit 09239c0,
    resnet_1x1), so y is left to the hardware.

    Where a tile's store gives y's final values (one block of channels, no bias) and its rows
    are whole cache lines, it bypasses the caches (FC_STORE_STREAM): each call writes 8 planes
    a plane apart, more streams than the hardware follows, and an ordinary store first reads its
    line from memory. A layer with 4x more filters than channels writes 4x more y than it reads
    x. Time with streamed stores / without, medians of 60 alternating calls in one process (a
    build with a switch in this driver), batch 4: ResNet's 64 -> 256 expansion at 56x56 0.66 at
    one thread and 0.82 at two, resnet_1x1 (256 -> 64) 0.89 and 0.95, 128 -> 512 at 28x28 0.84
    (asv Conv2dPointwise and `python tools/network_layers.py --layers resnet50_1x1_64_256`
    across the commit that made it so show the same layers).
    conv2d puts y at x's offset in its cache line (`fastconv.conv._pointwise_line_offset`), so
    that y's panels are whole lines wherever x's are.
    """
    cdef Py_ssize_t line = 64 // sizeof(floating)
    cdef Py_ssize_t prefetch_calls = (NR + line - 1) // line + 1
    cdef Py_ssize_t next_p0 = p0 + cols
    cdef bint has_next = next_p0 < P
    cdef floating *b_edge = scratch
    cdef floating *w_edge = b_edge + GEMM_KC * NR
    cdef floating *c_tile = w_edge + MR * GEMM_KC
    cdef Py_ssize_t kb, k0, kc, fr, rows, i, j, b_stride, w_stride
    cdef bint accumulate
    cdef int store
    cdef const floating *b
    cdef const floating *w_block
    cdef const floating *prefetch
    # y's final values come from one kernel store when there is one block of channels and no
    # bias to add to: those go past the caches where y's rows are whole lines (see below).
    cdef bint stream_y = (CG <= GEMM_KC and not has_bias
                          and P * sizeof(floating) % 64 == 0)
    for kb in range((CG + GEMM_KC - 1) // GEMM_KC):
        k0 = kb * GEMM_KC
        kc = min(GEMM_KC, CG - k0)
        accumulate = has_bias or kb > 0
        b = x_plane + k0 * P + p0
        b_stride = P
        if cols < NR:
            # The kernel reads NR pixels of every row: a partial panel is read from a padded copy.
            for i in range(kc):
                memcpy(b_edge + i * NR, b + i * P, cols * sizeof(floating))
                memset(b_edge + i * NR + cols, 0, (NR - cols) * sizeof(floating))
            b = b_edge
            b_stride = NR
        for fr in range((nf + MR - 1) // MR):
            rows = min(MR, nf - fr * MR)
            prefetch = NULL
            if has_next and fr < prefetch_calls:
                prefetch = x_plane + k0 * P + next_p0 + fr * line
            w_block = w_rows + fr * MR * CG + k0
            if rows == MR and cols == NR:
                store = FC_STORE_ADD if accumulate else FC_STORE_SET
                if stream_y and (<size_t>(y_rows + fr * MR * P + p0)) % 64 == 0:
                    store = FC_STORE_STREAM
                _stream_ukernel(kernels, kc, w_block, CG, b, b_stride,
                                y_rows + fr * MR * P + p0, P, NR, prefetch, store)
                continue
            # A partial tile: zero-padded filter rows, outputs through c_tile.
            w_stride = CG
            if rows < MR:
                _copy_padded_rows(w_block, CG, rows, MR, kc, w_edge)
                w_block = w_edge
                w_stride = kc
            _stream_ukernel(kernels, kc, w_block, w_stride, b, b_stride, c_tile, NR, cols,
                            prefetch, FC_STORE_SET)
            for i in range(rows):
                for j in range(cols):
                    if accumulate:
                        y_rows[(fr * MR + i) * P + p0 + j] += c_tile[i * NR + j]
                    else:
                        y_rows[(fr * MR + i) * P + p0 + j] = c_tile[i * NR + j]


def pack_kmajor(const floating[:, ::1] src, Py_ssize_t rows, Py_ssize_t kc, Py_ssize_t panel,
                int isa, floating[::1] dst):
    """dst[:kc * panel] := the ISA path's k-major GEMM pack of the first kc columns of src's
    first `rows` rows (zero lanes past them): the packing kernel alone, for its tests."""
    if not (0 <= rows <= min(panel, src.shape[0]) and 0 <= kc <= src.shape[1]
            and dst.shape[0] >= kc * panel):
        raise ValueError("pack_kmajor: rows, kc or dst out of range")
    if kc and panel:
        _pack_kmajor(fc_kernel_table_for(isa), &src[0, 0], src.shape[1], rows, kc, panel,
                     &dst[0])


def has_streaming_kernel(int isa):
    """Whether the ISA path has the streaming GEMM micro-kernels (both dtypes or neither)."""
    return fc_kernel_table_for(isa).sgemm_stream_ukernel != NULL


def conv2d_pointwise(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                     const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                     Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                     Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """y := conv2d(x, w) + bias for 1x1 filters at unit stride without padding (the geometry
    arguments must say so), reading x where it lies.

    Each image's group is then a plain product y_g = W_g @ x_g of its filters (KG x CG) and its
    channels' planes (CG rows, H*W apart). `conv2d_im2col` copies every block of x into packed
    panels first, and the direct tiles broadcast x's pixels from CG streams a plane apart, a few
    bytes from each line. Here the streaming micro-kernel loads NR pixels of one channel per
    step straight from x (whole lines) and broadcasts the filters' taps from their rows (a few
    KB, which stay in cache); see `_pointwise_panel`. A task owns a block of POINTWISE_TASK_PANELS
    panels of one image's group and, when there would be fewer than MIN_TASKS tasks, a block of
    its filters.

    Every output is the bias plus the same GEMM_KC-long blocks of products, each summed from
    zero in increasing order, as in `conv2d_im2col`: bit-identical to it, and so independent of
    the batch and the thread count. Without a bias the first block's sums are stored, not added
    to a zero-filled y (the same bits): the fill was a pass of stores to lines not yet in cache,
    on the critical path (ours / PyTorch on resnet_1x1 1.19 -> 1.18 at one thread, 0.78 -> 0.76
    at two; means of 6-8 alternating runs of the two builds; asv Conv2dPointwise across the
    commit that made it so compares the same).
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    if (kernels.sgemm_stream_ukernel == NULL if floating is float
            else kernels.dgemm_stream_ukernel == NULL):
        raise ValueError("conv2d_pointwise: this ISA has no streaming kernel")
    if ((w.shape[2], w.shape[3], SH, SW, PH, PW) != (1, 1, 1, 1, 0, 0)
            or (y.shape[2], y.shape[3]) != (x.shape[2], x.shape[3])):
        raise ValueError("conv2d_pointwise: needs 1x1 filters, unit stride, no padding and "
                         f"y's planes of x's size, got filters {w.shape[2]}x{w.shape[3]}, "
                         f"stride ({SH}, {SW}), padding ({PH}, {PW}), planes "
                         f"{x.shape[2]}x{x.shape[3]} -> {y.shape[2]}x{y.shape[3]}")
    if floating is float:
        MR, NR = kernels.sgemm_stream_mr, kernels.sgemm_stream_nr
    else:
        MR, NR = kernels.dgemm_stream_mr, kernels.dgemm_stream_nr
    cdef Py_ssize_t N = x.shape[0], CG = w.shape[1], K = w.shape[0], KG = K // groups
    cdef Py_ssize_t P = x.shape[2] * x.shape[3]
    # When every channel's plane starts at the same offset in its cache line, the panel grid is
    # shifted to start on a line boundary (the pixels before it form a partial panel of their
    # own): with AVX-512 every panel then starts on a line, with AVX2 (96-byte panels) every
    # other one. A vector load across two lines costs two (asv Conv2dPointwise across commit
    # 9b7b785: resnet_1x1 about 7% faster with the grid shifted).
    cdef Py_ssize_t line = 64 // sizeof(floating), head = 0
    if P % line == 0:
        head = min(P, <Py_ssize_t>((-(<size_t>&x[0, 0, 0, 0]) % 64) // sizeof(floating)))
    cdef Py_ssize_t panels = (head > 0) + (P - head + NR - 1) // NR
    cdef Py_ssize_t pixel_blocks = (panels + POINTWISE_TASK_PANELS - 1) // POINTWISE_TASK_PANELS
    cdef Py_ssize_t filters_per_task, filter_tasks
    filters_per_task, filter_tasks = _split_rows(KG, N * groups * pixel_blocks, MR)
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, GEMM_KC * NR + MR * GEMM_KC + MR * NR, floating is float)
    cdef Py_ssize_t tasks = N * groups * pixel_blocks * filter_tasks
    cdef Py_ssize_t t, plane, pb, f_begin, nf, panel, p0, cols
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            # Filter blocks vary fastest, then pixel blocks: consecutive tasks share x's lines.
            f_begin = t % filter_tasks * filters_per_task
            nf = min(filters_per_task, KG - f_begin)
            pb = t // filter_tasks % pixel_blocks
            plane = t // (filter_tasks * pixel_blocks)
            for panel in range(pb * POINTWISE_TASK_PANELS,
                               min(panels, (pb + 1) * POINTWISE_TASK_PANELS)):
                if head > 0 and panel == 0:
                    p0 = 0
                    cols = head
                else:
                    p0 = head + (panel - (head > 0)) * NR
                    cols = min(NR, P - p0)
                if has_bias:
                    _fill_rows(&y[0, 0, 0, 0] + (plane // groups * K + plane % groups * KG
                                                 + f_begin) * P + p0,
                               nf, P, cols, &bias[0], has_bias, plane % groups * KG + f_begin)
                _pointwise_panel(kernels, MR, NR, &x[0, 0, 0, 0] + plane * CG * P, CG, P, p0,
                                 cols, &w[0, 0, 0, 0] + (plane % groups * KG + f_begin) * CG, nf,
                                 &y[0, 0, 0, 0] + (plane // groups * K + plane % groups * KG
                                                   + f_begin) * P,
                                 &workspace[threadid(), 0], has_bias)


def rotate_filters(const floating[:, :, :, ::1] w, Py_ssize_t groups, int num_threads):
    """The filters of the convolution that gives dx at unit stride: out[g*CG + c, k] =
    w[g*KG + k, c] rotated by 180 degrees, shape (groups*CG, KG, FH, FW) for w of shape
    (groups*KG, CG, FH, FW). One pass of FH*FW-element blocks (NumPy's reversed-stride copy of
    the same took ~10% of vgg_conv5_2's dx)."""
    cdef Py_ssize_t K = w.shape[0], CG = w.shape[1], taps = w.shape[2] * w.shape[3]
    cdef Py_ssize_t KG = K // groups
    out = np.empty((groups * CG, KG, w.shape[2], w.shape[3]),
                   dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, :, :, ::1] rotated = out
    cdef Py_ssize_t row, g, c, k, t
    cdef const floating *src
    cdef floating *dst
    if out.size == 0:
        return out
    with nogil:
        for row in prange(groups * CG, schedule="static", num_threads=num_threads):
            g = row // CG
            c = row % CG
            for k in range(KG):
                src = &w[g * KG + k, c, 0, 0]
                dst = &rotated[row, k, 0, 0]
                for t in range(taps):
                    dst[t] = src[taps - 1 - t]
    return out


cdef inline void _columns_few_pixels(const fc_kernel_table *kernels, Py_ssize_t kc,
                                     const floating *w, Py_ssize_t w_row_stride, Py_ssize_t n,
                                     const floating *b, Py_ssize_t b_row_stride,
                                     Py_ssize_t pixels, floating *c, Py_ssize_t ldc,
                                     bint accumulate) noexcept nogil:
    if floating is float:
        kernels.sgemm_columns_few_pixels(kc, w, w_row_stride, n, b, b_row_stride, pixels, c, ldc,
                                         accumulate)
    else:
        kernels.dgemm_columns_few_pixels(kc, w, w_row_stride, n, b, b_row_stride, pixels, c, ldc,
                                         accumulate)


def conv2d_backward_input(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                          floating[:, :, :, ::1] dx, Py_ssize_t groups, Py_ssize_t SH,
                          Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH,
                          Py_ssize_t DW, int isa, int num_threads,
                          bint few_pixel_kernel=True):
    """dx := the gradient of conv2d with respect to its input: per image and group,
    dx_g = col2im(W_g^T @ dy_g), which is conv_transpose2d(dy, w).

    Only real products are formed (no zeros inserted for stride > 1): each column tile
    W_g^T[rows, :] @ dy_g[:, pixels] is added back at the input positions its windows read. A
    task owns a block of input channels of one image, so no two tasks add into the same element
    and the order of the additions is fixed.

    With at most GEMM_FEW_PIXELS output pixels per image (an FC layer as a convolution on maps
    its kernel covers: one pixel), the packed GEMM would fill 1 of dy's 16 lanes after a
    transposing pack of W. Where the path has the few-pixel column kernel (AVX2), it computes
    the columns instead with its lanes along W's rows (the taps, contiguous there), so W
    streams from memory in its own order. Column kernel / GEMM, the two alternating in one
    process, on VGG's fc6 (512x7x7, 4096 float or 2048 double filters) at batch 1 and 4: float32
    0.34-0.39x (batch 1: 44 / 127 ms at one thread, 27 / 72 at two; asv
    Conv2dBackwardInputFewPixels times batch 1), float64 0.49-0.64x. It sums
    the same blocks in the same order, so the bits do not change (few_pixel_kernel=False forces
    the GEMM, for the tests that show it).
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    MR, NR = _micro_tile(kernels, floating is float)
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], K = w.shape[0], CG = w.shape[1]
    cdef ConvShape s = _conv_shape(dx.shape[2], dx.shape[3], w.shape[2], w.shape[3], dy.shape[2],
                                   dy.shape[3], SH, SW, PH, PW, DH, DW)
    cdef Py_ssize_t KG = K // groups, FF = s.FH * s.FW, R = CG * FF, P = s.HO * s.WO
    cdef Py_ssize_t NC = GEMM_NC_PANELS * NR, MC = GEMM_MC_PANELS * MR
    # Columns are kept for one block of pixels, ldc apart (NC, or fewer for small planes), and
    # for at most `rows_cap` rows (DX_COLUMNS_BYTES): a task's rows past that (a kernel of more
    # than ~500 taps) run in chunks, each packing dy again.
    cdef Py_ssize_t ldc = min(NC, (P + NR - 1) // NR * NR)
    cdef Py_ssize_t rows_cap = max(MC, DX_COLUMNS_BYTES // (ldc * <Py_ssize_t>sizeof(floating))
                                   // MC * MC)
    # Channels per task: whole channels, so tasks own their planes; enough tasks for the threads;
    # no more than fit the columns, while a channel's rows do.
    cdef Py_ssize_t channel_parts = min(CG, max(1, (MIN_TASKS + N * groups - 1) // (N * groups)))
    cdef Py_ssize_t channels_cap = max(1, rows_cap // FF)
    channel_parts = max(channel_parts, (CG + channels_cap - 1) // channels_cap)
    cdef Py_ssize_t channels_per_task = (CG + channel_parts - 1) // channel_parts
    cdef Py_ssize_t channel_tasks = (CG + channels_per_task - 1) // channels_per_task
    cdef Py_ssize_t chunk_rows = min(channels_per_task * FF, rows_cap)
    cdef Py_ssize_t a_size = MC * GEMM_KC, b_size = NC * GEMM_KC, col_size = chunk_rows * ldc
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, a_size + b_size + col_size + FC_GEMM_MAX_TILE, floating is float)
    cdef bint columns_kernel = few_pixel_kernel and P <= GEMM_FEW_PIXELS and (
        kernels.sgemm_columns_few_pixels != NULL if floating is float
        else kernels.dgemm_columns_few_pixels != NULL)
    cdef Py_ssize_t tasks = N * groups * channel_tasks
    cdef Py_ssize_t t, n, g, ct, c0, c1, pb, p0, nc, r_begin, r_end, chunk, q0, q1, mb, m0, mc
    cdef Py_ssize_t kb, k0, kc
    cdef floating *a_packed
    cdef floating *b_packed
    cdef floating *cols
    cdef floating *dx_image
    cdef const floating *dy_image
    cdef const floating *w_group
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            a_packed = &workspace[threadid(), 0]
            b_packed = a_packed + a_size
            cols = b_packed + b_size
            ct = t % channel_tasks
            g = (t // channel_tasks) % groups
            n = t // (channel_tasks * groups)
            c0 = ct * channels_per_task
            c1 = min(CG, c0 + channels_per_task)
            dx_image = &dx[0, 0, 0, 0] + (n * groups + g) * CG * s.H * s.W
            memset(dx_image + c0 * s.H * s.W, 0, (c1 - c0) * s.H * s.W * sizeof(floating))
            dy_image = &dy[0, 0, 0, 0] + (n * groups + g) * KG * P
            w_group = &w[0, 0, 0, 0] + g * KG * R
            r_begin = c0 * FF
            r_end = c1 * FF
            for pb in range((P + NC - 1) // NC):
                p0 = pb * NC
                nc = min(NC, P - p0)
                for chunk in range((r_end - r_begin + chunk_rows - 1) // chunk_rows):
                    q0 = r_begin + chunk * chunk_rows
                    q1 = min(r_end, q0 + chunk_rows)
                    # Each block of dy is packed once and serves all the chunk's rows; the first
                    # block's products start the columns (no zeroing pass), the others add to
                    # them. Rows are added back in increasing order whatever the chunks.
                    for kb in range((KG + GEMM_KC - 1) // GEMM_KC):
                        k0 = kb * GEMM_KC
                        kc = min(GEMM_KC, KG - k0)
                        if columns_kernel:
                            _columns_few_pixels(kernels, kc, w_group + k0 * R + q0, R, q1 - q0,
                                                dy_image + k0 * P + p0, P, nc, cols, ldc,
                                                kb > 0)
                            continue
                        _pack_b(dy_image + k0 * P + p0, P, kc, nc, NR, b_packed)
                        for mb in range((q1 - q0 + MC - 1) // MC):
                            m0 = q0 + mb * MC
                            mc = min(MC, q1 - m0)
                            _pack_a_transposed(w_group + k0 * R + m0, R, mc, kc, MR, a_packed)
                            _gemm_packed_block(kernels, MR, NR, mc, nc, kc, a_packed, b_packed,
                                               cols + (m0 - q0) * ldc, ldc,
                                               b_packed + b_size + col_size, kb > 0)
                    _col2im_tile_add(kernels, cols, ldc, &s, q0, q1 - q0, p0, nc, dx_image)


def conv2d_backward_weight(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                           floating[:, :, :, :, ::1] dw_parts, Py_ssize_t groups,
                           Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                           Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """dw_parts[s] := sum over the images n of batch part s of dy_g[n] @ col_g[n]^T, for every
    group g: the gradient of conv2d with respect to w, in dw_parts.shape[0] partial sums that the
    caller adds in order (more than one only when the batch must be split for parallelism).

    A task owns a block of dw's columns (kernel offsets) for one group and batch part, and reduces
    over its images and their pixels in a fixed order.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    MR, NR = _micro_tile(kernels, floating is float)
    cdef Py_ssize_t N = x.shape[0], K = dw_parts.shape[1], CG = dw_parts.shape[2]
    cdef Py_ssize_t parts = dw_parts.shape[0]
    cdef ConvShape s = _conv_shape(x.shape[2], x.shape[3], dw_parts.shape[3], dw_parts.shape[4],
                                   dy.shape[2], dy.shape[3], SH, SW, PH, PW, DH, DW)
    cdef Py_ssize_t KG = K // groups, R = CG * s.FH * s.FW, P = s.HO * s.WO
    cdef Py_ssize_t NCW = GEMM_DW_PANELS * NR, MC = GEMM_MC_PANELS * MR
    cdef Py_ssize_t col_blocks = (R + NCW - 1) // NCW
    # The reduction runs over units of GEMM_KC of the batch's output pixels, image after image
    # (a unit spans images where planes are smaller: ResNet-50's 1x1 layers on 7x7 maps had
    # 49-pixel units, each packing and running its GEMM for a fifth of a block); part s sums
    # units [s*U/parts, (s+1)*U/parts), so one image can be split when the batch is too small.
    cdef Py_ssize_t units = (N * P + GEMM_KC - 1) // GEMM_KC
    cdef Py_ssize_t a_size = MC * GEMM_KC, b_size = NCW * GEMM_KC, rows_size = NR * GEMM_KC
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, a_size + b_size + rows_size + FC_GEMM_MAX_TILE, floating is float)
    cdef Py_ssize_t tasks = parts * groups * col_blocks
    cdef Py_ssize_t t, part, g, cb, r0, nc, u, q0, kc, mb, m0, mc, i
    cdef Py_ssize_t x_image_stride = x.shape[1] * x.shape[2] * x.shape[3]
    cdef floating *a_packed
    cdef floating *b_packed
    cdef floating *dw_block
    with nogil:
        # Tasks differ in size (the last column block is partial) and are few, so they are
        # handed out as threads free up; each writes only its own block, in a fixed order.
        for t in prange(tasks, schedule="dynamic", num_threads=num_threads):
            a_packed = &workspace[threadid(), 0]
            b_packed = a_packed + a_size
            cb = t % col_blocks
            g = (t // col_blocks) % groups
            part = t // (col_blocks * groups)
            r0 = cb * NCW
            nc = min(NCW, R - r0)
            dw_block = &dw_parts[0, 0, 0, 0, 0] + (part * K + g * KG) * R + r0
            for i in range(KG):
                memset(dw_block + i * R, 0, nc * sizeof(floating))
            for u in range(part * units // parts, (part + 1) * units // parts):
                q0 = u * GEMM_KC
                kc = min(GEMM_KC, N * P - q0)
                _pack_im2col_transposed(kernels, &x[0, g * CG, 0, 0], x_image_stride, &s, q0,
                                        kc, r0, nc, NR, b_packed + b_size, b_packed)
                for mb in range((KG + MC - 1) // MC):
                    m0 = mb * MC
                    mc = min(MC, KG - m0)
                    _pack_a_pixels(kernels, &dy[0, g * KG + m0, 0, 0], K * P, P, q0, mc, kc,
                                   MR, a_packed)
                    _gemm_packed_block(kernels, MR, NR, mc, nc, kc, a_packed, b_packed,
                                       dw_block + m0 * R, R, b_packed + b_size + rows_size)


def backward_weight_parts(Py_ssize_t N, Py_ssize_t groups, Py_ssize_t CG, Py_ssize_t KG,
                          Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t HO, Py_ssize_t WO,
                          Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t DH, Py_ssize_t DW, int isa,
                          bint single, str driver):
    """How many partial sums a backward-weights driver should use: 1 unless dw's blocks give the
    threads too little work, and never so many that the partial sums take over 64 MiB. The
    drivers split the batch into units: "gemm" (conv2d_backward_weight) into blocks of GEMM_KC
    of the batch's output pixels and "filter tiles" (conv2d_backward_weight_filter_tiles) into (image,
    block of output rows), so both split a batch of one image too; "dot"
    (conv2d_backward_weight_direct) into images."""
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    MR, NR = _micro_tile(kernels, single)
    cdef Py_ssize_t R = CG * FH * FW, dw_size = groups * KG * R
    cdef Py_ssize_t base_tasks = groups * ((R + GEMM_DW_PANELS * NR - 1) // (GEMM_DW_PANELS * NR))
    cdef Py_ssize_t units = N
    cdef Py_ssize_t CB, KB
    if driver == "gemm":
        units = (N * HO * WO + GEMM_KC - 1) // GEMM_KC
    elif driver == "filter tiles":
        CB, KB = backward_weight_filter_tile_blocks(CG, FH * FW, KG, isa, single)
        base_tasks = groups * ((CG + CB - 1) // CB) * ((KG + KB - 1) // KB)
        units = N * backward_weight_filter_tile_row_blocks(CG, FH, FW, KG, HO, WO, SH, SW, DH,
                                                           DW, isa, single)
    cdef Py_ssize_t parts = 1
    if base_tasks < MIN_TASKS:
        parts = min(units, (MIN_TASKS + base_tasks - 1) // base_tasks)
    return max(1, min(parts, (64 * 2**20) // max(1, dw_size * (4 if single else 8))))


cdef inline void _backward_weight_tile(
        const fc_kernel_table *kernels, Py_ssize_t rows, Py_ssize_t WO, const floating *dy,
        Py_ssize_t dy_k_stride, Py_ssize_t dy_row_stride, const floating *x,
        Py_ssize_t x_row_stride, const Py_ssize_t *tap_offset, floating *dw,
        Py_ssize_t dw_k_stride, Py_ssize_t kt, Py_ssize_t tt) noexcept nogil:
    if floating is float:
        kernels.sbackward_weight_tile(rows, WO, dy, dy_k_stride, dy_row_stride, x, x_row_stride,
                                      tap_offset, dw, dw_k_stride, kt, tt)
    else:
        kernels.dbackward_weight_tile(rows, WO, dy, dy_k_stride, dy_row_stride, x, x_row_stride,
                                      tap_offset, dw, dw_k_stride, kt, tt)


def conv2d_backward_weight_direct(const floating[:, :, :, ::1] dy,
                                  const floating[:, :, :, ::1] x,
                                  floating[:, :, :, :, ::1] dw_parts, Py_ssize_t groups,
                                  Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                                  Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """dw_parts[s] := the gradient of conv2d with respect to w over batch part s, with no
    column matrix: register tiles of filters x taps take dot products of dy's rows with the
    rows of the same padded, phase-split input band the direct forward reads.

    A task is (batch part, group, range of filters); it owns those rows of dw_parts[s] and adds
    its images, row blocks and tiles in a fixed order.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t KT = kernels.dw_kt, TT = kernels.dw_tt
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t parts = dw_parts.shape[0], K = dw_parts.shape[1], CG = dw_parts.shape[2]
    cdef Py_ssize_t FH = dw_parts.shape[3], FW = dw_parts.shape[4]
    cdef Py_ssize_t HO = dy.shape[2], WO = dy.shape[3], KG = K // groups, taps = CG * FH * FW
    # The tiles read WO elements per row (partial vectors under a mask).
    cdef BandLayout band_layout = _band_layout(CG, FH, FW, HO, WO, SH, SW, DH, DW,
                                               sizeof(floating), 0)
    cdef Py_ssize_t phase_len = band_layout.phase_len, row_len = band_layout.row_len
    cdef Py_ssize_t rows_per_block = band_layout.rows_per_block
    cdef Py_ssize_t max_band_rows = band_layout.band_rows
    cdef Py_ssize_t row_blocks = (HO + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t images_per_part = (N + parts - 1) // parts
    cdef Py_ssize_t k_tiles = (KG + KT - 1) // KT
    cdef Py_ssize_t tiles_per_range, k_ranges
    tiles_per_range, k_ranges = _split_rows(k_tiles, parts * groups, 1)
    cdef Py_ssize_t[::1] tap_offset = _tap_offsets(band_layout, CG, FH, FW, SW, DH, DW)
    cdef floating[:, ::1] bands = _aligned_rows(num_threads, CG * max_band_rows * row_len,
                                                 floating is float)
    cdef Py_ssize_t tasks = parts * groups * k_ranges
    cdef Py_ssize_t t, part, g, kr, k_begin, k_end, n, rb, ho0, rows, kt0, kt, t0, tt, i, j
    cdef floating *band
    cdef floating *dw_block
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            kr = t % k_ranges
            g = (t // k_ranges) % groups
            part = t // (k_ranges * groups)
            k_begin = kr * tiles_per_range * KT
            k_end = min(KG, k_begin + tiles_per_range * KT)
            dw_block = &dw_parts[part, g * KG + k_begin, 0, 0, 0]
            memset(dw_block, 0, (k_end - k_begin) * taps * sizeof(floating))
            band = &bands[threadid(), 0]
            for n in range(part * images_per_part, min(N, (part + 1) * images_per_part)):
                for rb in range(row_blocks):
                    ho0 = rb * rows_per_block
                    rows = min(rows_per_block, HO - ho0)
                    _build_band(kernels, &x[n, g * CG, 0, 0], CG, H, W, ho0 * SH,
                                max_band_rows, PH, PW, SW, phase_len, band)
                    for i in range((k_end - k_begin + KT - 1) // KT):
                        kt0 = k_begin + i * KT
                        kt = min(KT, k_end - kt0)
                        for j in range((taps + TT - 1) // TT):
                            t0 = j * TT
                            tt = min(TT, taps - t0)
                            _backward_weight_tile(
                                kernels, rows, WO, &dy[n, g * KG + kt0, ho0, 0], HO * WO, WO,
                                band, SH * row_len, &tap_offset[t0],
                                dw_block + (kt0 - k_begin) * taps + t0, taps, kt, tt)


cdef inline void _backward_weight_filter_tile(
        const fc_kernel_table *kernels, Py_ssize_t rows, Py_ssize_t WO, const floating *x,
        Py_ssize_t x_row_stride, const Py_ssize_t *tap_offset, const floating *g,
        floating *c) noexcept nogil:
    if floating is float:
        kernels.sbackward_weight_filter_tile(rows, WO, x, x_row_stride, tap_offset, g, c)
    else:
        kernels.dbackward_weight_filter_tile(rows, WO, x, x_row_stride, tap_offset, g, c)


def backward_weight_filter_tile_blocks(Py_ssize_t CG, Py_ssize_t taps_per_channel,
                                       Py_ssize_t KG, int isa, bint single):
    """(channels, filters) per task of conv2d_backward_weight_filter_tiles: all of a group's
    filters (in whole tiles) unless one channel's tiles would overflow DW_FILTER_TILE_BLOCK_BYTES,
    and as few equal blocks of channels as keep the task's block of tiles within it."""
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR = kernels.sfilter_tile_mr if single else kernels.dfilter_tile_mr
    cdef Py_ssize_t NR = kernels.sfilter_tile_nr if single else kernels.dfilter_tile_nr
    cdef Py_ssize_t budget = DW_FILTER_TILE_BLOCK_BYTES // (4 if single else 8)
    cdef Py_ssize_t one_channel = (taps_per_channel + MR - 1) // MR * MR
    cdef Py_ssize_t filter_tiles = (KG + NR - 1) // NR
    cdef Py_ssize_t filters = min(filter_tiles, max(1, budget // (one_channel * NR))) * NR
    cdef Py_ssize_t channels = 1
    while (channels < CG
           and (taps_per_channel * (channels + 1) + MR - 1) // MR * MR * filters <= budget):
        channels += 1
    cdef Py_ssize_t channel_blocks = (CG + channels - 1) // channels
    return (CG + channel_blocks - 1) // channel_blocks, filters


cdef BandLayout _filter_tile_band(Py_ssize_t channels, Py_ssize_t FH, Py_ssize_t FW,
                                  Py_ssize_t HO, Py_ssize_t WO, Py_ssize_t SH, Py_ssize_t SW,
                                  Py_ssize_t DH, Py_ssize_t DW, Py_ssize_t itemsize,
                                  Py_ssize_t NR):
    """The band of conv2d_backward_weight_filter_tiles: its tiles read exactly WO pixels a row.
    dy's rows for the band's output rows are packed beside it, NR values per pixel: no more
    output rows than keep those within DIRECT_BAND_BYTES too (a one-channel layer's band holds
    many rows)."""
    cdef BandLayout band = _band_layout(channels, FH, FW, HO, WO, SH, SW, DH, DW, itemsize, 0)
    cdef Py_ssize_t packed_rows = max(1, DIRECT_BAND_BYTES // (WO * NR * itemsize))
    if band.rows_per_block > packed_rows:
        band.rows_per_block = packed_rows
        band.band_rows = (packed_rows - 1) * SH + (FH - 1) * DH + 1
    return band


def backward_weight_filter_tile_row_blocks(Py_ssize_t CG, Py_ssize_t FH, Py_ssize_t FW,
                                           Py_ssize_t KG, Py_ssize_t HO, Py_ssize_t WO,
                                           Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t DH,
                                           Py_ssize_t DW, int isa, bint single):
    """Blocks of output rows per image in conv2d_backward_weight_filter_tiles (one band each)."""
    cdef Py_ssize_t CB, KB
    CB, KB = backward_weight_filter_tile_blocks(CG, FH * FW, KG, isa, single)
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef BandLayout band = _filter_tile_band(
        CB, FH, FW, HO, WO, SH, SW, DH, DW, 4 if single else 8,
        kernels.sfilter_tile_nr if single else kernels.dfilter_tile_nr)
    return (HO + band.rows_per_block - 1) // band.rows_per_block


def conv2d_backward_weight_filter_tiles(const floating[:, :, :, ::1] dy,
                                        const floating[:, :, :, ::1] x,
                                        floating[:, :, :, :, ::1] dw_parts, Py_ssize_t groups,
                                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                                        Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, int isa,
                                        int num_threads):
    """dw_parts[s] := the gradient of conv2d with respect to w over batch part s, by register
    tiles of MR taps x NR filters with the filters along the vector lanes: each tap's input
    values are broadcast from the padded, phase-split band the direct forward reads, against dy
    packed NR filters per pixel. Unlike the GEMM, nothing is packed from the input (asv
    Conv2dBackward.time_backward_weight across commit c55c69b shows what that saved).

    A task is (batch part, group, block of channels, block of filters): it sums its images, row
    blocks and pixels in a fixed order into a per-thread block of tiles, then stores that into
    its own elements of dw_parts[s].
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR = kernels.sfilter_tile_mr if floating is float else kernels.dfilter_tile_mr
    cdef Py_ssize_t NR = kernels.sfilter_tile_nr if floating is float else kernels.dfilter_tile_nr
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t parts = dw_parts.shape[0], K = dw_parts.shape[1], CG = dw_parts.shape[2]
    cdef Py_ssize_t FH = dw_parts.shape[3], FW = dw_parts.shape[4], FF = FH * FW
    cdef Py_ssize_t HO = dy.shape[2], WO = dy.shape[3], KG = K // groups, R = CG * FF
    cdef Py_ssize_t CB, KB
    CB, KB = backward_weight_filter_tile_blocks(CG, FF, KG, isa, floating is float)
    cdef Py_ssize_t channel_blocks = (CG + CB - 1) // CB, filter_blocks = (KG + KB - 1) // KB
    cdef Py_ssize_t block_taps = (CB * FF + MR - 1) // MR * MR
    cdef BandLayout band_layout = _filter_tile_band(CB, FH, FW, HO, WO, SH, SW, DH, DW,
                                                    sizeof(floating), NR)
    cdef Py_ssize_t phase_len = band_layout.phase_len, row_len = band_layout.row_len
    cdef Py_ssize_t rows_per_block = band_layout.rows_per_block
    cdef Py_ssize_t band_rows = band_layout.band_rows
    # The reduction runs over units (image, block of output rows); part s sums units
    # [s*U/parts, (s+1)*U/parts), so one image can be split when the batch is too small.
    cdef Py_ssize_t row_blocks = (HO + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t units = N * row_blocks
    # Where the band would be a copy of x's rows, the tiles read x.
    cdef bint x_is_band = reads_inside_x(H, W, HO, WO, FH, FW, SH, SW, PH, PW, DH, DW)
    cdef BandLayout read_layout = _x_as_band(H, W) if x_is_band else band_layout
    row_len = read_layout.row_len
    offsets = _tap_offsets(read_layout, CB, FH, FW, SW, DH, DW)
    # Row 0 for full blocks of channels, row 1 for the last: taps past a block's last one
    # repeat its first (read, never stored), so no tile reads past the block's channels.
    cdef Py_ssize_t last_taps = (CG - (channel_blocks - 1) * CB) * FF
    padded_offsets = np.full((2, block_taps), offsets[0], dtype=np.intp)
    padded_offsets[0, :CB * FF] = offsets
    padded_offsets[1, :last_taps] = offsets[:last_taps]
    cdef Py_ssize_t[:, ::1] tap_offset = padded_offsets
    cdef Py_ssize_t band_size = 0 if x_is_band else CB * band_rows * row_len
    cdef Py_ssize_t g_size = rows_per_block * WO * NR
    cdef floating[:, ::1] workspace = _aligned_rows(
        num_threads, band_size + g_size + block_taps * KB, floating is float)
    cdef Py_ssize_t tasks = parts * groups * channel_blocks * filter_blocks
    cdef Py_ssize_t t, part, g, cb, fb, c0, cc, k0, kb, u, n, ho0, rows, sub, kt, tile
    cdef floating *band
    cdef const floating *rows_in
    cdef floating *g_packed
    cdef floating *tiles
    cdef floating *dw_flat = &dw_parts[0, 0, 0, 0, 0]
    with nogil:
        for t in prange(tasks, schedule="static", num_threads=num_threads):
            band = &workspace[threadid(), 0]
            g_packed = band + band_size
            tiles = g_packed + g_size
            fb = t % filter_blocks
            cb = (t // filter_blocks) % channel_blocks
            g = (t // (filter_blocks * channel_blocks)) % groups
            part = t // (filter_blocks * channel_blocks * groups)
            c0 = cb * CB
            cc = min(CB, CG - c0)
            k0 = fb * KB
            kb = min(KB, KG - k0)
            memset(tiles, 0, block_taps * KB * sizeof(floating))
            for u in range(part * units // parts, (part + 1) * units // parts):
                n = u // row_blocks
                ho0 = u % row_blocks * rows_per_block
                rows = min(rows_per_block, HO - ho0)
                if x_is_band:
                    rows_in = &x[n, g * CG + c0, ho0 * SH, 0]
                else:
                    _build_band(kernels, &x[n, g * CG + c0, 0, 0], cc, H, W, ho0 * SH, band_rows,
                                PH, PW, SW, phase_len, band)
                    rows_in = band
                for sub in range((kb + NR - 1) // NR):
                    kt = min(NR, kb - sub * NR)
                    _pack_kmajor(kernels, &dy[n, g * KG + k0 + sub * NR, ho0, 0], HO * WO, kt,
                                 rows * WO, NR, g_packed)
                    for tile in range((cc * FF + MR - 1) // MR):
                        _backward_weight_filter_tile(
                            kernels, rows, WO, rows_in, SH * row_len,
                            &tap_offset[cb == channel_blocks - 1, tile * MR], g_packed,
                            tiles + (sub * block_taps + tile * MR) * NR)
            for sub in range((kb + NR - 1) // NR):
                _store_filter_tile(kernels, tiles + sub * block_taps * NR, NR, cc * FF,
                                   min(NR, kb - sub * NR), NULL,
                                   dw_flat + (part * K + g * KG + k0 + sub * NR) * R + c0 * FF, R)
