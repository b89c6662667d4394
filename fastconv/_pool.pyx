"""Cython drivers of pooling forward and backward over NCHW planes, threads over OpenMP.

Trusts its caller (fastconv/pool.py, after fastconv/_geometry.py validated everything): arrays are
C-contiguous with the shapes the geometry says, every extent is >= 1, padding is at most half the
kernel, and every max-pool index lies inside its plane. Forward tasks own blocks of output rows; backward
tasks own whole input planes and add in a fixed order, so results never depend on the thread count.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

from fastconv._kernels cimport fc_kernel_table, fc_kernel_table_for

import numpy as np

cdef enum:
    # Output rows per max-pooling task: one kernel call runs them, paying its setup once
    # (a 16-output row of cifar_pool cost as much in the call and setup as in comparisons).
    POOL_ROWS_PER_TASK = 16


def max_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       int64_t[:, :, :, ::1] indices, bint with_indices,
                       Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW,
                       Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW,
                       int isa, int num_threads):
    """y (and indices, if with_indices) := max-pooling of x, one task per block of up to
    POOL_ROWS_PER_TASK output rows of a plane."""
    cdef const fc_kernel_table *kernels = fc_kernel_table_for(isa)
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], HO = y.shape[2], WO = y.shape[3]
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t blocks = (HO + POOL_ROWS_PER_TASK - 1) // POOL_ROWS_PER_TASK
    cdef Py_ssize_t t, plane, ho, rows
    cdef int64_t *index_rows
    with nogil:
        for t in prange(planes * blocks, schedule="static", num_threads=num_threads):
            plane = t // blocks
            ho = t % blocks * POOL_ROWS_PER_TASK
            rows = min(POOL_ROWS_PER_TASK, HO - ho)
            index_rows = (&indices[0, 0, 0, 0] + (plane * HO + ho) * WO) if with_indices else NULL
            if floating is float:
                kernels.smaxpool2d_row(&x[0, 0, 0, 0] + plane * H * W,
                                       &y[0, 0, 0, 0] + (plane * HO + ho) * WO, index_rows, H, W,
                                       WO, ho, rows, KH, KW, SH, SW, PH, PW, DH, DW)
            else:
                kernels.dmaxpool2d_row(&x[0, 0, 0, 0] + plane * H * W,
                                       &y[0, 0, 0, 0] + (plane * HO + ho) * WO, index_rows, H, W,
                                       WO, ho, rows, KH, KW, SH, SW, PH, PW, DH, DW)


def max_pool2d_backward(const floating[:, :, :, ::1] dy, const int64_t[:, :, :, ::1] indices,
                        floating[:, :, :, ::1] dx, int num_threads):
    """dx[plane][indices[plane][o]] += dy[plane][o] over the outputs o of each plane, in order.

    The indices come from the caller: each is checked to lie in [0, H*W) before it is followed,
    and a plane stops at its first bad one. Returns None, or a bad index (the first of the
    lowest such plane) so the caller can raise; dx is then garbage. Checking as it scatters
    rather than in a pass of its own took about a quarter off cifar_pool's backward (asv
    MaxPool2d across the commit that made it so).
    """
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1], HW = dx.shape[2] * dx.shape[3]
    cdef Py_ssize_t OUT = dy.shape[2] * dy.shape[3]
    cdef int64_t[::1] bad_index = np.full(planes, -1, dtype=np.int64)
    cdef unsigned char[::1] bad = np.zeros(planes, dtype=np.uint8)
    cdef Py_ssize_t plane, o
    cdef floating *dx_plane
    cdef const floating *dy_plane
    cdef const int64_t *index_plane
    with nogil:
        for plane in prange(planes, schedule="static", num_threads=num_threads):
            dx_plane = &dx[0, 0, 0, 0] + plane * HW
            dy_plane = &dy[0, 0, 0, 0] + plane * OUT
            index_plane = &indices[0, 0, 0, 0] + plane * OUT
            memset(dx_plane, 0, HW * sizeof(floating))
            for o in range(OUT):
                if <size_t>index_plane[o] >= <size_t>HW:
                    bad[plane] = 1
                    bad_index[plane] = index_plane[o]
                    break
                dx_plane[index_plane[o]] += dy_plane[o]
    for plane in range(planes):
        if bad[plane]:
            return int(bad_index[plane])
    return None


cdef inline Py_ssize_t _window(Py_ssize_t o, Py_ssize_t S, Py_ssize_t P, Py_ssize_t K,
                               Py_ssize_t size, Py_ssize_t *begin, Py_ssize_t *end) noexcept nogil:
    """PyTorch's average-pooling window along one axis: [begin, end) clipped to the input, and
    the returned window length clipped to the padded input (what count_include_pad divides by)."""
    cdef Py_ssize_t start = o * S - P
    cdef Py_ssize_t stop = min(start + K, size + P)
    cdef Py_ssize_t padded_length = stop - start
    begin[0] = max(start, 0)
    end[0] = min(stop, size)
    return padded_length


cdef inline double _divisor(Py_ssize_t padded_h, Py_ssize_t padded_w, Py_ssize_t count,
                            bint count_include_pad, Py_ssize_t divisor_override) noexcept nogil:
    """The window's divisor, as a double: a padded window of a huge kernel can count more than
    2**63 positions, which no 64-bit integer product holds."""
    if divisor_override > 0:
        return <double>divisor_override
    return <double>padded_h * <double>padded_w if count_include_pad else <double>count


cdef void _avg_pool_row(const floating *x, floating *y, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t WO, Py_ssize_t ho, Py_ssize_t KH, Py_ssize_t KW,
                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                        bint count_include_pad, Py_ssize_t divisor_override) noexcept nogil:
    """Output row ho of average-pooling the H x W plane x."""
    cdef Py_ssize_t wo, h, w, h0, h1, w0, w1, padded_w
    cdef Py_ssize_t padded_h = _window(ho, SH, PH, KH, H, &h0, &h1)
    cdef floating total
    for wo in range(WO):
        padded_w = _window(wo, SW, PW, KW, W, &w0, &w1)
        total = 0
        if h0 < h1 and w0 < w1:
            for h in range(h0, h1):
                for w in range(w0, w1):
                    total = total + x[h * W + w]
            total = <floating>(total / _divisor(padded_h, padded_w, (h1 - h0) * (w1 - w0),
                                                count_include_pad, divisor_override))
        y[wo] = total


cdef void _avg_pool_plane_backward(const floating *dy, floating *dx, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t HO, Py_ssize_t WO, Py_ssize_t KH, Py_ssize_t KW,
                                   Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                                   bint count_include_pad,
                                   Py_ssize_t divisor_override) noexcept nogil:
    """dx (one H x W plane) := the adjoint of average-pooling applied to dy (HO x WO)."""
    cdef Py_ssize_t ho, wo, h, w, h0, h1, w0, w1, padded_h, padded_w
    cdef floating share
    memset(dx, 0, H * W * sizeof(floating))
    for ho in range(HO):
        padded_h = _window(ho, SH, PH, KH, H, &h0, &h1)
        for wo in range(WO):
            padded_w = _window(wo, SW, PW, KW, W, &w0, &w1)
            if h0 >= h1 or w0 >= w1:
                continue
            share = <floating>(dy[ho * WO + wo] / _divisor(padded_h, padded_w,
                                                           (h1 - h0) * (w1 - w0),
                                                           count_include_pad, divisor_override))
            for h in range(h0, h1):
                for w in range(w0, w1):
                    dx[h * W + w] += share


def avg_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW,
                       Py_ssize_t PH, Py_ssize_t PW, bint count_include_pad,
                       Py_ssize_t divisor_override, int num_threads):
    """y := the sum of each window of x divided by its divisor (PyTorch's rules; a window with no
    input element gives 0), one task per output row. divisor_override <= 0 means none."""
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], HO = y.shape[2], WO = y.shape[3]
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t t
    with nogil:
        for t in prange(planes * HO, schedule="static", num_threads=num_threads):
            _avg_pool_row(&x[0, 0, 0, 0] + (t // HO) * H * W, &y[0, 0, 0, 0] + t * WO, H, W, WO,
                          t % HO, KH, KW, SH, SW, PH, PW, count_include_pad, divisor_override)


def avg_pool2d_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                        Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH, Py_ssize_t SW,
                        Py_ssize_t PH, Py_ssize_t PW, bint count_include_pad,
                        Py_ssize_t divisor_override, int num_threads):
    """dx := the adjoint of avg_pool2d_forward: each dy spread evenly (by the forward's divisor)
    over its window's input elements, one task per input plane."""
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], HO = dy.shape[2], WO = dy.shape[3]
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, schedule="static", num_threads=num_threads):
            _avg_pool_plane_backward(&dy[0, 0, 0, 0] + plane * HO * WO,
                                     &dx[0, 0, 0, 0] + plane * H * W, H, W, HO, WO, KH, KW,
                                     SH, SW, PH, PW, count_include_pad, divisor_override)
