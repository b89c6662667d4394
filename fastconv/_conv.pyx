"""Cython drivers of conv2d forward: split the output into tasks, spread them over OpenMP threads
with the GIL released, and call the C kernels of src_c/ on each tile.

Trusts its caller (fastconv/conv.py, after fastconv/_geometry.py validated everything): arrays are
C-contiguous with the shapes the geometry says, y has shape (N, K, HO, WO) with N, K, HO, WO >= 1,
K and C divide by groups, and `isa` names a path this CPU runs. Every output element is written by
exactly one task, and the tiling depends on the shape and the ISA only, never on the thread count,
so results are bit-identical for any number of threads.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid

import numpy as np

from fastconv._kernels cimport (
    FC_GEMM_MAX_TILE, fc_dconv2d_direct_row__generic, fc_kernel_table, fc_kernel_table_for,
    fc_sconv2d_direct_row__generic,
)

cdef enum:
    # Filters per direct task: each input row read from cache feeds this many output rows.
    DIRECT_FILTER_BLOCK = 16
    # GEMM cache blocking (rows of the reduction per packed panel; micro-panels per block). With
    # the largest micro-kernel (14x32 floats) a thread's packed blocks take ~380 KB: they stay in L2.
    GEMM_KC = 256
    GEMM_MC_PANELS = 8
    GEMM_NC_PANELS = 8
    # Below this many (image, group, pixel block) tasks, filters are split too, so threads have work.
    GEMM_MIN_TASKS = 8


cdef inline void _fill_rows(floating *y, Py_ssize_t rows, Py_ssize_t row_stride, Py_ssize_t cols,
                            const floating *bias, bint has_bias, Py_ssize_t k0) noexcept nogil:
    """y[i*row_stride + j] = bias[k0 + i] (or 0) for i < rows, j < cols."""
    cdef Py_ssize_t i, j
    cdef floating value
    for i in range(rows):
        value = bias[k0 + i] if has_bias else 0
        for j in range(cols):
            y[i * row_stride + j] = value


def conv2d_direct(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                  const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                  Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                  Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """y := conv2d(x, w) + bias by direct convolution, one task per (n, group, filter block, ho)."""
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


cdef void _pack_filters(const floating *w, Py_ssize_t row_length, Py_ssize_t m0, Py_ssize_t mc,
                        Py_ssize_t k0, Py_ssize_t kc, Py_ssize_t MR,
                        floating *packed) noexcept nogil:
    """Pack w[m0:m0+mc, k0:k0+kc] (rows of row_length) into MR-row panels, column by column,
    zero-padding the last panel to MR rows."""
    cdef Py_ssize_t panel, i, p, row
    cdef floating *dst
    for panel in range((mc + MR - 1) // MR):
        dst = packed + panel * MR * kc
        for i in range(MR):
            row = panel * MR + i
            if row < mc:
                for p in range(kc):
                    dst[p * MR + i] = w[(m0 + row) * row_length + k0 + p]
            else:
                for p in range(kc):
                    dst[p * MR + i] = 0


cdef void _pack_im2col(const floating *x, Py_ssize_t H, Py_ssize_t W, Py_ssize_t FH,
                       Py_ssize_t FW, Py_ssize_t WO, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH,
                       Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW, Py_ssize_t k0, Py_ssize_t kc,
                       Py_ssize_t p0, Py_ssize_t nc, Py_ssize_t NR,
                       floating *packed) noexcept nogil:
    """Build rows k0:k0+kc and output pixels p0:p0+nc of one image's column matrix straight into
    NR-column panels, row by row, zero-padding the last panel to NR columns.

    Row r of the column matrix is the kernel offset (c, fh, fw) = unravel(r, (C, FH, FW)); column p
    is the output pixel (ho, wo) = divmod(p, WO); the entry is x[c, ho*SH + fh*DH - PH,
    wo*SW + fw*DW - PW], or 0 in the padding. Pixels are copied in runs that stay within one
    output row and one panel, so each run is a bounds-free (at unit stride, contiguous) copy
    between two zero fills.
    """
    cdef Py_ssize_t panels = (nc + NR - 1) // NR
    cdef Py_ssize_t rr, r, c, fh, fw, j, ho, wo, hi, shift, wo_begin, wo_end, run, lo, hi_end, i
    cdef const floating *x_row
    cdef floating *dst
    for rr in range(kc):
        r = k0 + rr
        fw = r % FW
        fh = (r // FW) % FH
        c = r // (FW * FH)
        # Output columns whose input column wo*SW + shift lies inside the image.
        shift = fw * DW - PW
        wo_begin = 0 if shift >= 0 else (-shift + SW - 1) // SW
        wo_end = 0 if W - shift <= 0 else min(WO, (W - shift + SW - 1) // SW)
        ho = p0 // WO
        wo = p0 % WO
        j = 0
        while j < nc:
            run = min(WO - wo, nc - j, NR - j % NR)
            dst = packed + (j // NR) * kc * NR + rr * NR + j % NR
            hi = ho * SH + fh * DH - PH
            lo = wo
            hi_end = wo
            if 0 <= hi < H:
                lo = max(wo, wo_begin)
                hi_end = max(lo, min(wo + run, wo_end))
                # Offset by shift so that x_row[wo * SW] is the input of output column wo.
                x_row = x + (c * H + hi) * W + shift
            for i in range(wo, lo):
                dst[i - wo] = 0
            if SW == 1:
                for i in range(lo, hi_end):
                    dst[i - wo] = x_row[i]
            else:
                for i in range(lo, hi_end):
                    dst[i - wo] = x_row[i * SW]
            for i in range(hi_end, wo + run):
                dst[i - wo] = 0
            j = j + run
            wo = wo + run
            if wo == WO:
                wo = 0
                ho = ho + 1
        for j in range(nc, panels * NR):
            packed[(j // NR) * kc * NR + rr * NR + j % NR] = 0


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
                             floating *c, Py_ssize_t ldc, floating *edge_tile) noexcept nogil:
    """c[0:mc, 0:nc] += a_packed (mc x kc) @ b_packed (kc x nc), one micro-kernel per MR x NR
    tile. Partial tiles at the edges go through edge_tile, so no write leaves c's block."""
    cdef Py_ssize_t ir, jr, i, j, rows, cols
    cdef floating *c_tile
    for ir in range((mc + MR - 1) // MR):
        rows = min(MR, mc - ir * MR)
        for jr in range((nc + NR - 1) // NR):
            cols = min(NR, nc - jr * NR)
            c_tile = c + ir * MR * ldc + jr * NR
            if rows == MR and cols == NR:
                _ukernel(kernels, kc, a_packed + ir * MR * kc, b_packed + jr * NR * kc,
                         c_tile, ldc, 1)
            else:
                _ukernel(kernels, kc, a_packed + ir * MR * kc, b_packed + jr * NR * kc,
                         edge_tile, NR, 0)
                for i in range(rows):
                    for j in range(cols):
                        c_tile[i * ldc + j] += edge_tile[i * NR + j]


def gemm_tiling(Py_ssize_t N, Py_ssize_t groups, Py_ssize_t KG, Py_ssize_t pixels,
                Py_ssize_t MR, Py_ssize_t NR):
    """(pixel block, pixel blocks, filter rows per task, filter tasks) for an im2col conv."""
    cdef Py_ssize_t nc = GEMM_NC_PANELS * NR
    cdef Py_ssize_t pixel_blocks = (pixels + nc - 1) // nc
    cdef Py_ssize_t base_tasks = N * groups * pixel_blocks
    cdef Py_ssize_t m_tasks = 1, rows_per_task = KG
    if base_tasks < GEMM_MIN_TASKS:
        m_tasks = min((KG + MR - 1) // MR, (GEMM_MIN_TASKS + base_tasks - 1) // base_tasks)
        rows_per_task = ((KG + m_tasks - 1) // m_tasks + MR - 1) // MR * MR
        m_tasks = (KG + rows_per_task - 1) // rows_per_task
    return nc, pixel_blocks, rows_per_task, m_tasks


def conv2d_im2col(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                  const floating[::1] bias, bint has_bias, floating[:, :, :, ::1] y,
                  Py_ssize_t groups, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                  Py_ssize_t DH, Py_ssize_t DW, int isa, int num_threads):
    """y := conv2d(x, w) + bias as, per image and group, W_g[KG, CG*FH*FW] @ col[CG*FH*FW, HO*WO].

    The column matrix is never built whole: each task builds GEMM_KC rows x one pixel block of it
    at a time, straight into packed panels in a per-thread workspace of fixed size.
    """
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t MR, NR
    if floating is float:
        MR, NR = kernels.sgemm_mr, kernels.sgemm_nr
        dtype = np.float32
    else:
        MR, NR = kernels.dgemm_mr, kernels.dgemm_nr
        dtype = np.float64
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = w.shape[0], CG = w.shape[1], FH = w.shape[2], FW = w.shape[3]
    cdef Py_ssize_t HO = y.shape[2], WO = y.shape[3]
    cdef Py_ssize_t KG = K // groups, KDIM = CG * FH * FW, P = HO * WO
    cdef Py_ssize_t NC, pixel_blocks, rows_per_task, m_tasks
    NC, pixel_blocks, rows_per_task, m_tasks = gemm_tiling(N, groups, KG, P, MR, NR)
    cdef Py_ssize_t MC = GEMM_MC_PANELS * MR
    cdef Py_ssize_t a_size = MC * GEMM_KC, b_size = NC * GEMM_KC
    cdef floating[:, ::1] workspace = np.empty(
        (num_threads, a_size + b_size + FC_GEMM_MAX_TILE), dtype=dtype)
    cdef Py_ssize_t tasks = N * groups * pixel_blocks * m_tasks
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
            mt = t % m_tasks
            pb = (t // m_tasks) % pixel_blocks
            g = (t // (m_tasks * pixel_blocks)) % groups
            n = t // (m_tasks * pixel_blocks * groups)
            p0 = pb * NC
            nc = min(NC, P - p0)
            m_begin = mt * rows_per_task
            m_end = min(KG, m_begin + rows_per_task)
            x_image = &x[0, 0, 0, 0] + (n * groups + g) * CG * H * W
            w_group = &w[0, 0, 0, 0] + g * KG * KDIM
            y_block = &y[0, 0, 0, 0] + (n * K + g * KG + m_begin) * P + p0
            _fill_rows(y_block, m_end - m_begin, P, nc, &bias[0], has_bias, g * KG + m_begin)
            for kb in range((KDIM + GEMM_KC - 1) // GEMM_KC):
                k0 = kb * GEMM_KC
                kc = min(GEMM_KC, KDIM - k0)
                _pack_im2col(x_image, H, W, FH, FW, WO, SH, SW, PH, PW, DH, DW,
                             k0, kc, p0, nc, NR, b_packed)
                for mb in range((m_end - m_begin + MC - 1) // MC):
                    m0 = m_begin + mb * MC
                    mc = min(MC, m_end - m0)
                    _pack_filters(w_group, KDIM, m0, mc, k0, kc, MR, a_packed)
                    _gemm_packed_block(kernels, MR, NR, mc, nc, kc, a_packed, b_packed,
                                       y_block + (m0 - m_begin) * P, P,
                                       b_packed + b_size)
