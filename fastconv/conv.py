"""Convolution: public functions that validate (fastconv/_geometry.py), allocate, choose an
algorithm and call the Cython drivers (fastconv/_conv.pyx)."""
import numpy as np

from fastconv import _config, _conv
from fastconv._geometry import conv2d_geometry

ALGORITHMS = ("auto", "direct", "im2col")


def choose_algorithm(geometry):
    """The algorithm ``algorithm="auto"`` runs for a validated geometry.

    im2col feeds the register-blocked GEMM micro-kernels and wins whenever each output element
    reduces over enough terms to amortise building and packing the column matrix; below that
    (depthwise and other thin grouped layers) the direct loops, which pack nothing, win.
    """
    return "im2col" if geometry.reduction_size >= 32 else "direct"


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """2-D convolution (cross-correlation, as in PyTorch's ``conv2d``) over NCHW batches.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W) or (C, H, W)
        Input batch (or one unbatched image), float32 or float64.
    w : ndarray, shape (K, C/groups, FH, FW)
        Filters, same dtype as `x`.
    b : ndarray, shape (K,), optional
        Bias, same dtype as `x`.
    stride, dilation : int or (int, int)
        Step between windows and between kernel taps, >= 1.
    padding : int or (int, int) or {"valid", "same"}
        Zeros added on each side; "same" (stride 1 only) keeps H and W, padding one more at the
        bottom/right when the dilated kernel extent is even, as PyTorch does.
    groups : int
        Channel groups: filter k sees input channels of group ``k // (K/groups)`` only.
    algorithm : {"auto", "direct", "im2col"}
        "direct" loops over kernel offsets with no column matrix; "im2col" builds the column
        matrix tile by tile and multiplies it with a packed GEMM; "auto" picks per shape
        (see `choose_algorithm`; `fastconv.last_algorithm()` tells which ran).

    Returns
    -------
    y : ndarray, shape (N, K, HO, WO) or (K, HO, WO)
        ``HO = floor((H + 2*padding - dilation*(FH-1) - 1) / stride) + 1``, likewise WO; same
        dtype as `x`.

    Examples
    --------
    >>> x = np.ones((1, 3, 5, 5), np.float32)
    >>> w = np.ones((2, 3, 3, 3), np.float32)
    >>> conv2d(x, w, padding=1).shape
    (1, 2, 5, 5)
    """
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {', '.join(ALGORITHMS)}, "
                         f"got {algorithm!r}")
    x, w, b, geometry, batched = conv2d_geometry("conv2d", x, w, b, stride, padding, dilation,
                                                 groups)
    if algorithm == "auto":
        algorithm = choose_algorithm(geometry)
    _config.record_algorithm(algorithm)
    y = np.empty(geometry.output_shape, dtype=x.dtype)
    if y.size == 0:
        return y if batched else y[0]
    if geometry.reduction_size == 0:
        y[...] = 0 if b is None else b[:, np.newaxis, np.newaxis]
        return y if batched else y[0]
    driver = _conv.conv2d_direct if algorithm == "direct" else _conv.conv2d_im2col
    bias = np.zeros(1, x.dtype) if b is None else np.ascontiguousarray(b)
    driver(np.ascontiguousarray(x), np.ascontiguousarray(w), bias, b is not None, y,
           geometry.groups, *geometry.stride, *geometry.padding, *geometry.dilation,
           _config.isa_code(), _config.get_num_threads())
    return y if batched else y[0]
