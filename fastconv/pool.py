"""Pooling: public functions that validate (fastconv/_geometry.py), allocate and call the Cython
drivers (fastconv/_pool.pyx). Semantics are PyTorch's ``max_pool2d``, ``avg_pool2d`` and
``lp_pool2d``, including ``ceil_mode``, the padding rule and the index convention."""
import math

import numpy as np

from fastconv import _config, _pool
from fastconv._geometry import (
    aligned_contiguous, check_bool, check_divisor_override, check_gradient, check_input_shape,
    check_max_pool_indices, check_norm_type, check_truth_flag, empty_aligned,
    max_pool_index_error, pool2d_geometry, pool2d_shape_geometry,
)


# Work units of a pooling element against threads_for's multiply-adds: an element visited takes
# ~0.4 ns (cifar_pool's max_pool2d: 786K taps in 0.3 ms), a multiply-add of the convolutions
# ~0.007 ns, so pooling counted as multiply-adds kept calls of half a millisecond on one thread.
POOL_WORK_WEIGHT = 16


def _threads(geometry):
    """Thread count for a pooling call: its work is the window taps it visits."""
    N, C, HO, WO = geometry.output_shape
    return _config.threads_for(POOL_WORK_WEIGHT * N * C * HO * WO * geometry.kernel_size[0]
                               * geometry.kernel_size[1])


def _unbatch(array, batched):
    return array if batched else array[0]


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over NCHW planes, as PyTorch's ``max_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        float32 or float64.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Step between windows; defaults to `kernel_size`.
    padding : int or (int, int)
        Implicit padding on each side, at most ``kernel_size // 2``; it never wins a max.
    dilation : int or (int, int)
        Step between window taps.
    ceil_mode : bool
        Round the output size up (a last partial window must start inside the input or its
        left/top padding).
    return_indices : bool
        Also return where each maximum was (0 and 1 are taken as False and True, as PyTorch
        does).

    Returns
    -------
    y : ndarray, shape (N, C, HO, WO) or (C, HO, WO)
    indices : ndarray of int64, same shape as y (only with ``return_indices=True``)
        Flat offsets ``h*W + w`` into each input plane. Ties go to the first maximum in row-major
        window order; NaN counts as the maximum (a later NaN replaces an earlier one, as PyTorch).

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = max_pool2d(x, 2, return_indices=True)
    >>> y[0, 0], idx[0, 0]
    (array([[ 5.,  7.],
           [13., 15.]], dtype=float32), array([[ 5,  7],
           [13, 15]]))
    """
    func = "max_pool2d"
    return_indices = check_truth_flag(func, "return_indices", return_indices)
    x, g, batched = pool2d_geometry(func, x, kernel_size, stride, padding, dilation, ceil_mode)
    y = empty_aligned(g.output_shape, x.dtype)
    indices = empty_aligned(g.output_shape if return_indices else (1, 1, 1, 1), np.int64)
    if y.size:
        _pool.max_pool2d_forward(aligned_contiguous(x), y, indices, return_indices,
                                 *g.kernel_size, *g.stride, *g.padding, *g.dilation,
                                 _config.isa_code(), _threads(g))
    if return_indices:
        return _unbatch(y, batched), _unbatch(indices, batched)
    return _unbatch(y, batched)


def max_pool2d_backward(dy, indices, input_shape):
    """Gradient of `max_pool2d` with respect to its input.

    Parameters
    ----------
    dy : ndarray, shape (N, C, HO, WO) or (C, HO, WO)
        Gradient with respect to the pooled output.
    indices : ndarray of integers, same shape as dy
        The indices `max_pool2d` returned. Every one is checked to lie inside its plane before
        anything is written.
    input_shape : tuple
        Shape of the forward input, (N, C, H, W) or (C, H, W).

    Returns
    -------
    dx : ndarray, shape `input_shape`
        Each dy added at its argmax; overlapping windows accumulate.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, idx = max_pool2d(x, 2, return_indices=True)
    >>> max_pool2d_backward(np.ones_like(y), idx, x.shape)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    func = "max_pool2d_backward"
    shape, batched = check_input_shape(func, input_shape)
    dy = np.asarray(dy) if not isinstance(dy, np.ndarray) else dy
    if dy.ndim != len(input_shape):
        raise ValueError(f"{func}: dy must have {len(input_shape)} dimensions like input_shape, "
                         f"got shape {dy.shape}")
    dy4 = check_gradient(func, dy, None, shape[:2] + dy.shape[-2:], batched,
                         "input_shape's batch and channels")
    indices = check_max_pool_indices(func, indices, dy)
    indices = indices if batched else indices[np.newaxis]
    if dy4.size and shape[2] * shape[3] == 0:
        raise max_pool_index_error(func, int(indices.flat[0]), 0)
    if dy4.size == 0 or math.prod(shape) == 0:
        return _unbatch(np.zeros(shape, dtype=dy4.dtype), batched)
    dx = empty_aligned(shape, dy4.dtype)
    bad = _pool.max_pool2d_backward(aligned_contiguous(dy4), indices, dx,
                                    _config.threads_for(POOL_WORK_WEIGHT
                                                        * (dx.size + dy4.size)))
    if bad is not None:
        raise max_pool_index_error(func, bad, shape[2] * shape[3])
    return _unbatch(dx, batched)


def _divisor_override(func, divisor_override):
    """(divisor, sign) for the compiled code, which takes divisors > 0 (0 meaning none): a
    negative override runs as its magnitude and the result is negated, which is exact (a
    quotient's rounding does not depend on the signs)."""
    divisor = check_divisor_override(func, divisor_override)
    if divisor is None:
        return 0, 1
    return abs(divisor), (1 if divisor > 0 else -1)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling over NCHW planes, as PyTorch's ``avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
    kernel_size, stride, padding, ceil_mode
        As in `max_pool2d` (no dilation).
    count_include_pad : bool
        Divide by the window size including padding (clipped to the padded input), else by the
        number of input elements in the window.
    divisor_override : int, optional
        Divide every window's sum by this instead: any non-zero int, negative ones too (as
        PyTorch).

    Returns
    -------
    y : ndarray, shape (N, C, HO, WO) or (C, HO, WO)

    Examples
    --------
    >>> avg_pool2d(np.ones((1, 1, 4, 4)), 2, padding=1)[0, 0]
    array([[0.25, 0.5 , 0.25],
           [0.5 , 1.  , 0.5 ],
           [0.25, 0.5 , 0.25]])
    """
    func = "avg_pool2d"
    count_include_pad = check_bool(func, "count_include_pad", count_include_pad)
    divisor, sign = _divisor_override(func, divisor_override)
    x, g, batched = pool2d_geometry(func, x, kernel_size, stride, padding, 1, ceil_mode)
    y = empty_aligned(g.output_shape, x.dtype)
    if y.size:
        _pool.avg_pool2d_forward(aligned_contiguous(x), y, *g.kernel_size, *g.stride,
                                 *g.padding, count_include_pad, divisor, _threads(g))
        if sign < 0:
            np.negative(y, out=y)
    return _unbatch(y, batched)


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of `avg_pool2d` with respect to its input.

    Parameters
    ----------
    dy : ndarray, shape (N, C, HO, WO) or (C, HO, WO)
        Gradient with respect to the pooled output (the forward output's shape).
    input_shape : tuple
        Shape of the forward input, (N, C, H, W) or (C, H, W).
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As given to `avg_pool2d`.

    Returns
    -------
    dx : ndarray, shape `input_shape`
        Each dy divided by its window's divisor and added to the window's input elements.
    """
    func = "avg_pool2d_backward"
    count_include_pad = check_bool(func, "count_include_pad", count_include_pad)
    divisor, sign = _divisor_override(func, divisor_override)
    shape, batched = check_input_shape(func, input_shape)
    g = pool2d_shape_geometry(func, shape, kernel_size, stride, padding, 1, ceil_mode)
    dy = check_gradient(func, dy, None, g.output_shape, batched, "the forward output's shape")
    dx = empty_aligned(shape, dy.dtype)
    if dx.size:
        if dy.size:
            _pool.avg_pool2d_backward(aligned_contiguous(dy), dx, *g.kernel_size, *g.stride,
                                      *g.padding, count_include_pad, divisor, _threads(g))
            if sign < 0:
                np.negative(dx, out=dx)
        else:
            dx[...] = 0
    return _unbatch(dx, batched)


def _window_sums(x, g):
    """Sum of each (unpadded) window of x: avg_pool2d_forward with divisor 1."""
    sums = np.empty(g.output_shape, dtype=x.dtype)
    if sums.size:
        _pool.avg_pool2d_forward(aligned_contiguous(x), sums, *g.kernel_size, *g.stride,
                                 0, 0, True, 1, _threads(g))
    return sums


def _partial_window_scales(g):
    """(HO, WO) factors kh*kw / (input elements the window covers), or None when every window is
    whole (always so without ceil_mode). PyTorch's lp_pool2d is ``avg_pool2d(x**p, ceil_mode) *
    (kh*kw)``, and the average of a partial last window divides by the elements it covers: that
    window's sum is scaled as if its missing elements held the covered ones' mean."""
    if math.prod(g.output_shape) == 0:
        return None
    (KH, KW), (SH, SW) = g.kernel_size, g.stride
    rows = np.minimum(KH, g.H - SH * np.arange(g.HO))
    cols = np.minimum(KW, g.W - SW * np.arange(g.WO))
    if rows.min() == KH and cols.min() == KW:
        return None
    return KH * KW / np.multiply.outer(rows, cols)


def _lp_norms(x, p, g):
    """y of lp_pool2d at a finite p for x (N, C, H, W): ``(window scale * sum x**p) ** (1/p)``,
    and the window scales (see `_partial_window_scales`)."""
    t = x.dtype.type
    powered = x * x if p == 2 else np.power(x, t(p))
    sums = _window_sums(powered, g)
    scales = _partial_window_scales(g)
    if scales is not None:
        sums *= scales.astype(x.dtype)
    return (np.sqrt(sums) if p == 2 else np.power(sums, t(1 / p))), scales


def _signs(x):
    """-1, 0 or 1 for each element of x, 0 at NaN: torch's ``sgn``, by which its autograd
    multiplies the gradient of ``abs`` (np.sign gives NaN at NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _extreme_magnitude_pool(x, p, kernel_size, stride, ceil_mode):
    """PyTorch's lp_pool2d at p = +inf and -inf, which it defines as ``max_pool2d(|x|)`` and
    ``-max_pool2d(-|x|)`` (no padding, no dilation). x: (N, C, H, W). Returns (y, indices), the
    indices of the chosen elements in max_pool2d's convention (first in window order on ties,
    NaN chosen)."""
    magnitudes = np.abs(x) if p > 0 else -np.abs(x)
    y, indices = max_pool2d(magnitudes, kernel_size, stride, 0, 1, ceil_mode,
                            return_indices=True)
    return (y if p > 0 else -y), indices


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D power-average (Lp) pooling, as PyTorch's ``lp_pool2d``: the p-norm of each window,
    ``(sum x**p) ** (1/p)``; ``norm_type=2`` is L2 pooling.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
    norm_type : float
        p > 0, or ``inf`` (the largest ``|x|`` of each window, ``max_pool2d(abs(x))``) or
        ``-inf`` (the smallest, ``-max_pool2d(-abs(x))``), as PyTorch. With a non-integer
        finite p, negative inputs give NaN (as ``x**p`` does).
    kernel_size, stride, ceil_mode
        As in `max_pool2d` (no padding). With ``ceil_mode=True`` a partial last window's sum is
        scaled by ``kh*kw / (elements it covers)`` before the root, as PyTorch's
        ``avg_pool2d(x**p) * (kh*kw)`` does (it averages over the covered elements only): a
        window covering ``a`` and ``b`` of a 2 x 2 kernel gives ``(2 * (a**p + b**p)) ** (1/p)``.

    Returns
    -------
    y : ndarray, shape (N, C, HO, WO) or (C, HO, WO)

    Examples
    --------
    >>> lp_pool2d(np.full((1, 1, 2, 2), 3.0), 2, 2)[0, 0]
    array([[6.]])
    >>> lp_pool2d(np.array([[[[1.0, -3.0], [2.0, 0.5]]]]), float("inf"), 2)[0, 0]
    array([[3.]])
    """
    func = "lp_pool2d"
    p = check_norm_type(func, norm_type)
    x, g, batched = pool2d_geometry(func, x, kernel_size, stride, 0, 1, ceil_mode)
    if math.isinf(p):
        return _unbatch(_extreme_magnitude_pool(x, p, kernel_size, stride, ceil_mode)[0],
                        batched)
    return _unbatch(_lp_norms(x, p, g)[0], batched)


def lp_pool2d_backward(dy, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Gradient of `lp_pool2d` with respect to its input.

    ``dx = x**(p-1) * sum over the windows containing x of s * dy / y**(p-1)``, s being the
    window's scale (``kh*kw / covered`` for a partial ceil_mode window, else 1); a window whose
    y is 0 contributes 0 (not NaN). At p = +-inf, as PyTorch's autograd of its
    definition: each dy goes to the element `lp_pool2d` chose (max_pool2d's rule: the first in
    window order on ties, a NaN if there is one), times the sign of that element (0 at 0 and at
    NaN, as torch's gradient of ``abs``).

    Parameters
    ----------
    dy : ndarray, shape (N, C, HO, WO) or (C, HO, WO)
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        The forward input.
    norm_type, kernel_size, stride, ceil_mode
        As given to `lp_pool2d`.

    Returns
    -------
    dx : ndarray, shape of x
    """
    func = "lp_pool2d_backward"
    p = check_norm_type(func, norm_type)
    x, g, batched = pool2d_geometry(func, x, kernel_size, stride, 0, 1, ceil_mode)
    dy = check_gradient(func, dy, ("x", x), g.output_shape, batched, "the forward output's shape")
    if math.isinf(p):
        _, indices = _extreme_magnitude_pool(x, p, kernel_size, stride, ceil_mode)
        return _unbatch(max_pool2d_backward(dy, indices, x.shape) * _signs(x), batched)
    t = x.dtype.type
    y, window_scales = _lp_norms(x, p, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(y == 0, t(0), dy / (y if p == 2 else np.power(y, t(p - 1))))
    if window_scales is not None:
        scale *= window_scales.astype(x.dtype)
    scale = aligned_contiguous(scale, dtype=x.dtype)
    spread = np.empty(x.shape, dtype=x.dtype)
    if spread.size:
        if scale.size:
            _pool.avg_pool2d_backward(scale, spread, *g.kernel_size, *g.stride, 0, 0, True, 1,
                                      _threads(g))
        else:
            spread[...] = 0
    dx = spread * (x if p == 2 else np.power(x, t(p - 1)))
    return _unbatch(dx, batched)
