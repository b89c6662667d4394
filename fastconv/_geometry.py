"""Shapes, output sizes and argument checks: the only place fastconv validates what a caller passed.

Every check runs before any allocation or compiled code, and every failure reads
``"<function>: <argument> must be <what>, got <actual>"`` (TypeError for a wrong type or dtype,
ValueError for a wrong value or shape).
"""
import functools
import math
import numbers
import os
from typing import NamedTuple

import numpy as np

from fastconv import _runtime

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Sizes and geometry parameters must fit the compiled code's 64-bit index arithmetic with room
# for the products it forms; anything larger is refused rather than wrapped.
MAX_PARAMETER = 2**40


@functools.cache
def _physical_memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**46


def _memory_limit_bytes():
    """The machine's physical memory: no single result may be larger."""
    return _physical_memory_bytes()


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# What the compiled code needs of an array: C-contiguous and aligned (it reads through typed
# pointers; a view into a byte buffer at an odd offset is contiguous but misaligned).
ALIGNED_C = ("C", "A")


def empty_aligned(shape, dtype, line_offset=0):
    """np.empty(shape, dtype) whose data starts on a 64-byte cache line (or line_offset bytes
    past one), as a view of a slightly larger buffer. NumPy aligns to 16 bytes, and the kernels
    load and store whole vectors, so rows of a multiple of 64 bytes would otherwise make most
    vectors straddle two lines, each then costing two accesses (asv Conv2dPointwise across
    commit 9b7b785: resnet_1x1 about 7% faster on aligned data)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    buffer = np.empty(size + 64, np.uint8)
    offset = (line_offset - _runtime.data_address(buffer)) % 64
    return buffer[offset:offset + size].view(dtype).reshape(shape)


def aligned_contiguous(array, dtype=None):
    """array as a C-contiguous, aligned array of dtype, copied only when it is not one already."""
    # The common case answered without np.require (1.8 us a call, several calls per conv2d).
    if isinstance(array, np.ndarray) and (dtype is None or array.dtype == dtype):
        flags = array.flags
        if flags.c_contiguous and flags.aligned:
            return array
    return np.require(array, dtype, ALIGNED_C)


def check_int(func, name, value, minimum):
    """An int (Python or NumPy integer, not bool) in [minimum, MAX_PARAMETER]."""
    # A plain int skips the abstract-class checks, most of a small call's validation time.
    if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{func}: {name} must be an int, got {_describe(value)}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    if value > MAX_PARAMETER:
        raise ValueError(f"{func}: {name} must be <= {MAX_PARAMETER}, got {value}")
    return value


def check_pair(func, name, value, minimum):
    """An int, or a pair of ints for (height, width), each >= minimum; returns a tuple. A
    one-element sequence stands for both, as in PyTorch."""
    if type(value) is int and minimum <= value <= MAX_PARAMETER:
        return (value, value)
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(value.ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) == 1:
            items = items * 2
        if len(items) != 2:
            raise ValueError(
                f"{func}: {name} must be an int or a pair of ints, got {_describe(value)}")
        try:
            return tuple(check_int(func, name, item, minimum) for item in items)
        except TypeError:
            raise TypeError(
                f"{func}: {name} must be an int or a pair of ints, got {_describe(value)}"
            ) from None
    if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                   or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{func}: {name} must be an int or a pair of ints, got {_describe(value)}")
    value = check_int(func, name, value, minimum)
    return (value, value)


def as_float_array(func, name, value):
    """value as a float32 or float64 ndarray in native byte order (no other dtype is cast)."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except Exception:
            raise TypeError(
                f"{func}: {name} must be a float32 or float64 array, got {_describe(value)}"
            ) from None
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{func}: {name} must be a float32 or float64 array, got dtype {array.dtype}")
    if not (array.flags.c_contiguous and array.flags.aligned) or not array.dtype.isnative:
        # The compiled code needs a contiguous copy: refuse one that cannot be made (a broadcast
        # view of a few bytes can stand for terabytes).
        check_result_size(func, array.shape, array.dtype.itemsize, f"a contiguous copy of {name}")
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def check_same_dtype(func, arrays):
    """arrays: (name, array) pairs that must share the first one's dtype."""
    first_name, first = arrays[0]
    for name, array in arrays[1:]:
        if array is not None and array.dtype != first.dtype:
            raise TypeError(f"{func}: {name} must have the dtype of {first_name} "
                            f"({first.dtype}), got {array.dtype}")


def check_result_size(func, shape, itemsize, what="the result"):
    """Refuse an array larger than this machine's memory before trying to allocate it, and one
    whose nonzero extents multiply past 2**62 even when another extent is 0 (NumPy refuses to
    describe such an array at all)."""
    count = math.prod(shape)
    if count == 0 and math.prod(max(1, extent) for extent in shape) * itemsize >= 2**62:
        raise ValueError(f"{func}: {what} of shape {tuple(shape)} must have fewer than 2**62 "
                         f"bytes' worth of positions, got too large a shape")
    if count * itemsize > _memory_limit_bytes():
        raise ValueError(f"{func}: {what} of shape {tuple(shape)} "
                         f"({count * itemsize / 2**30:.3g} GiB) must fit in memory "
                         f"({_memory_limit_bytes() / 2**30:.3g} GiB), got too large a size")


def output_size(func, axis, size, kernel_size, stride, padding_total, dilation):
    """floor((size + padding_total - dilation*(kernel_size-1) - 1) / stride) + 1, which must be >= 1."""
    extent = dilation * (kernel_size - 1) + 1
    if size + padding_total < extent:
        raise ValueError(
            f"{func}: the dilated kernel {axis} (dilation*(kernel_size-1)+1 = {extent}) must be "
            f"<= the padded input {axis} ({size} + padding = {size + padding_total}), "
            f"got a kernel larger than the input")
    return (size + padding_total - extent) // stride + 1


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of a convolution or pooling window along one axis (PyTorch's floor rule).

    Parameters
    ----------
    size : int
        Input length (``H`` or ``W``), >= 1 (PyTorch's conv2d and pooling refuse empty planes).
    kernel_size : int
        Kernel length ``F``, >= 1.
    stride, padding, dilation : int
        ``S >= 1``, ``P >= 0`` on each side, ``D >= 1``.

    Returns
    -------
    int
        ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    Raises
    ------
    ValueError
        If the dilated kernel is larger than the padded input.

    Examples
    --------
    >>> conv_output_size(224, 3, stride=1, padding=1)
    224
    >>> conv_output_size(227, 11, stride=4)
    55
    """
    func = "conv_output_size"
    size = check_int(func, "size", size, 1)
    kernel_size = check_int(func, "kernel_size", kernel_size, 1)
    stride = check_int(func, "stride", stride, 1)
    padding = check_int(func, "padding", padding, 0)
    dilation = check_int(func, "dilation", dilation, 1)
    return output_size(func, "size", size, kernel_size, stride, 2 * padding, dilation)


class Conv2dGeometry(NamedTuple):
    """A validated conv2d problem. Padding is (top, left); bottom/right padding only shows in
    HO, WO (PyTorch's ``padding="same"`` with an even kernel pads one more at the bottom/right).
    A named tuple rather than a frozen dataclass: it is built on every call, and a frozen
    dataclass took 2.3 us of a tiny conv2d's ~29 us to build, a tuple 0.4 us."""
    N: int
    C: int
    H: int
    W: int
    K: int
    FH: int
    FW: int
    HO: int
    WO: int
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int

    @property
    def output_shape(self):
        return (self.N, self.K, self.HO, self.WO)

    @property
    def reduction_size(self):
        """Multiply-adds per output element: C/groups * FH * FW."""
        return self.C // self.groups * self.FH * self.FW

    @property
    def flops(self):
        """Multiply-adds counted as 2 FLOPs."""
        return 2 * self.N * self.K * self.HO * self.WO * self.reduction_size


def _conv_padding(func, padding, kernel_size, stride, dilation):
    """Returns ((top, bottom), (left, right)) for an int, a pair, "valid" or "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{func}: stride must be 1 when padding='same', got {stride}")
            sides = []
            for f, d in zip(kernel_size, dilation):
                total = d * (f - 1)
                sides.append((total // 2, total - total // 2))
            return tuple(sides)
        raise ValueError(f"{func}: padding must be an int, a pair of ints, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = check_pair(func, "padding", padding, 0)
    return (ph, ph), (pw, pw)


def conv2d_geometry(func, x, w, b, stride, padding, dilation, groups):
    """Validate a conv2d call. x: (N, C, H, W) or unbatched (C, H, W), w: (K, C/groups, FH, FW),
    b: None or (K,). Returns (x, w, b, geometry, batched) with x 4-D and arrays as ndarrays."""
    x = as_float_array(func, "x", x)
    w = as_float_array(func, "w", w)
    if b is not None:
        b = as_float_array(func, "b", b)
    check_same_dtype(func, [("x", x), ("w", w), ("b", b)])
    if x.ndim not in (3, 4):
        raise ValueError(f"{func}: x must be 4-D (N, C, H, W) or 3-D (C, H, W), "
                         f"got shape {x.shape}")
    batched = x.ndim == 4
    if not batched:
        x = x[np.newaxis]
    geometry = conv2d_shape_geometry(func, x.shape, w.shape, None if b is None else b.shape,
                                     stride, padding, dilation, groups, x.dtype.itemsize)
    return x, w, b, geometry, batched


def conv2d_shape_geometry(func, x_shape, w_shape, b_shape, stride, padding, dilation, groups,
                          itemsize=4):
    """The shape checks and output size of conv2d: x_shape (N, C, H, W), w_shape (K, C/groups,
    FH, FW), b_shape None or (K,). Layers use it to size their outputs without any data."""
    if len(w_shape) != 4:
        raise ValueError(f"{func}: w must be 4-D (K, C/groups, FH, FW), got shape {w_shape}")
    groups = check_int(func, "groups", groups, 1)
    stride = check_pair(func, "stride", stride, 1)
    dilation = check_pair(func, "dilation", dilation, 1)
    N, C, H, W = x_shape
    K, CG, FH, FW = w_shape
    if FH < 1 or FW < 1:
        raise ValueError(f"{func}: w must have a kernel of at least 1 x 1, got shape {w_shape}")
    if C % groups:
        raise ValueError(f"{func}: x channels must be divisible by groups ({groups}), got {C}")
    if K % groups:
        raise ValueError(f"{func}: w.shape[0] (filters) must be divisible by groups "
                         f"({groups}), got {K}")
    if CG * groups != C:
        raise ValueError(f"{func}: x must have w.shape[1] * groups = {CG * groups} channels, "
                         f"got {C}")
    if b_shape is not None and tuple(b_shape) != (K,):
        raise ValueError(f"{func}: b must have shape ({K},) (one per filter), got {b_shape}")
    for name, shape in (("x", x_shape), ("w", w_shape)):
        if max(shape) > MAX_PARAMETER:
            raise ValueError(f"{func}: {name} extents must be <= {MAX_PARAMETER}, "
                             f"got shape {tuple(shape)}")
    (pt, pb), (pl, pr) = _conv_padding(func, padding, (FH, FW), stride, dilation)
    HO = output_size(func, "height", H, FH, stride[0], pt + pb, dilation[0])
    WO = output_size(func, "width", W, FW, stride[1], pl + pr, dilation[1])
    check_result_size(func, (N, K, HO, WO), itemsize)
    return Conv2dGeometry(N, C, H, W, K, FH, FW, HO, WO, stride, (pt, pl), dilation, groups)


def conv2d_backward_geometry(func, dy, x, w, stride, padding, dilation, groups):
    """Validate a conv2d backward call: the forward's arguments plus dy, whose shape must be the
    forward output's. Returns (dy, x, w, geometry, batched) with dy and x 4-D."""
    x, w, _, geometry, batched = conv2d_geometry(func, x, w, None, stride, padding, dilation,
                                                 groups)
    dy = as_float_array(func, "dy", dy)
    check_same_dtype(func, [("x", x), ("dy", dy)])
    expected = geometry.output_shape if batched else geometry.output_shape[1:]
    if dy.shape != expected:
        raise ValueError(f"{func}: dy must have the forward output's shape {expected}, "
                         f"got {dy.shape}")
    if not batched:
        dy = dy[np.newaxis]
    return dy, x, w, geometry, batched


def conv_transpose2d_geometry(func, x, w, b, stride, padding, output_padding, groups, dilation):
    """Validate a conv_transpose2d call. x: (N, C_in, H, W) or (C_in, H, W), w: (C_in,
    C_out/groups, FH, FW), b: None or (C_out,). Returns (x, w, b, geometry, batched), geometry
    being that of the forward convolution whose input gradient this is: its input is the result
    (N, C_out, HO, WO) and its output is x."""
    x = as_float_array(func, "x", x)
    w = as_float_array(func, "w", w)
    if b is not None:
        b = as_float_array(func, "b", b)
    check_same_dtype(func, [("x", x), ("w", w), ("b", b)])
    if x.ndim not in (3, 4):
        raise ValueError(f"{func}: x must be 4-D (N, C_in, H, W) or 3-D (C_in, H, W), "
                         f"got shape {x.shape}")
    batched = x.ndim == 4
    if not batched:
        x = x[np.newaxis]
    if w.ndim != 4:
        raise ValueError(f"{func}: w must be 4-D (C_in, C_out/groups, FH, FW), got shape {w.shape}")
    groups = check_int(func, "groups", groups, 1)
    stride = check_pair(func, "stride", stride, 1)
    padding = check_pair(func, "padding", padding, 0)
    output_padding = check_pair(func, "output_padding", output_padding, 0)
    dilation = check_pair(func, "dilation", dilation, 1)
    N, C_in, H, W = x.shape
    _, CG, FH, FW = w.shape
    if FH < 1 or FW < 1:
        raise ValueError(f"{func}: w must have a kernel of at least 1 x 1, got shape {w.shape}")
    if w.shape[0] != C_in:
        raise ValueError(f"{func}: w.shape[0] must equal the channels of x ({C_in}), "
                         f"got {w.shape[0]}")
    if C_in % groups:
        raise ValueError(f"{func}: x channels must be divisible by groups ({groups}), got {C_in}")
    C_out = CG * groups
    if b is not None and b.shape != (C_out,):
        raise ValueError(f"{func}: b must have shape ({C_out},) (w.shape[1] * groups), "
                         f"got {b.shape}")
    for axis, op, s, d in zip(("height", "width"), output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"{func}: output_padding must be smaller than stride or dilation "
                             f"({max(s, d)}) in {axis}, got {op}")
    sizes = []
    for axis, size, f, s, p, op, d in zip(("height", "width"), (H, W), (FH, FW), stride, padding,
                                          output_padding, dilation):
        out = (size - 1) * s - 2 * p + d * (f - 1) + op + 1
        # 0 gives an empty result, as PyTorch returns on its oneDNN path (float32, batches of
        # 2 or more; its other paths raise); a negative size every path of it refuses.
        if out < 0:
            raise ValueError(f"{func}: the output {axis} ((H-1)*stride - 2*padding + "
                             f"dilation*(kernel_size-1) + output_padding + 1) must be >= 0, "
                             f"got {out}")
        sizes.append(out)
    HO, WO = sizes
    check_result_size(func, (N, C_out, HO, WO), x.dtype.itemsize)
    geometry = Conv2dGeometry(N, C_out, HO, WO, C_in, FH, FW, H, W, stride, padding, dilation,
                              groups)
    return x, w, b, geometry, batched


class Pool2dGeometry(NamedTuple):
    """A validated pooling problem over N*C planes of H x W; padding is (top, left) = (bottom,
    right) as given (ceil_mode may add a partial window at the bottom/right). A named tuple for
    the reason Conv2dGeometry is one."""
    N: int
    C: int
    H: int
    W: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    HO: int
    WO: int

    @property
    def output_shape(self):
        return (self.N, self.C, self.HO, self.WO)


def pool_output_size(func, axis, size, kernel_size, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output length: floor (or, with ceil_mode, ceil) of the window count, where
    with ceil_mode the last window must start inside the input or its left/top padding; >= 1."""
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise ValueError(f"{func}: the output {axis} must be >= 1, got {out} (input {size}, "
                         f"padding {padding}, dilated kernel {dilation * (kernel_size - 1) + 1}, "
                         f"stride {stride})")
    return out


def check_bool(func, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be a bool, got {_describe(value)}")
    return bool(value)


def check_truth_flag(func, name, value):
    """A bool, or the int 0 or 1. For flags PyTorch takes by Python truthiness (max_pool2d's
    return_indices) rather than as a typed bool (ceil_mode): 0 and 1 are common spellings there,
    while None, strings or 2 are more likely mistakes than meant as False or True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: {name} must be a bool, got {_describe(value)}")
    if value not in (0, 1):
        raise ValueError(f"{func}: {name} must be 0 or 1 when an int, got {_describe(value)}")
    return bool(value)


def check_divisor_override(func, divisor_override):
    """None, or a non-zero int that every window's sum is divided by (negative too, as PyTorch)."""
    if divisor_override is None:
        return None
    divisor = check_int(func, "divisor_override", divisor_override, -MAX_PARAMETER)
    if divisor == 0:
        raise ValueError(f"{func}: divisor_override must be a non-zero int or None, got 0")
    return divisor


def check_pool_parameters(func, kernel_size, stride, padding, dilation, ceil_mode):
    """Pooling parameters as pairs: stride None means kernel_size, and padding must be at most
    half the kernel (PyTorch's rule). Returns (kernel_size, stride, padding, dilation, ceil_mode)."""
    kernel_size = check_pair(func, "kernel_size", kernel_size, 1)
    # PyTorch takes an empty stride, like None, to mean the kernel size.
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    else:
        stride = check_pair(func, "stride", stride, 1)
    padding = check_pair(func, "padding", padding, 0)
    dilation = check_pair(func, "dilation", dilation, 1)
    ceil_mode = check_bool(func, "ceil_mode", ceil_mode)
    for axis, p, k in zip(("height", "width"), padding, kernel_size):
        if p > k // 2:
            raise ValueError(f"{func}: padding must be at most half of kernel_size "
                             f"({k // 2}) in {axis}, got {p}")
    return kernel_size, stride, padding, dilation, ceil_mode


def pool2d_shape_geometry(func, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate pooling parameters for a 4-D input shape and size the output."""
    kernel_size, stride, padding, dilation, ceil_mode = check_pool_parameters(
        func, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, H, W = shape
    HO = pool_output_size(func, "height", H, kernel_size[0], stride[0], padding[0], dilation[0],
                          ceil_mode)
    WO = pool_output_size(func, "width", W, kernel_size[1], stride[1], padding[1], dilation[1],
                          ceil_mode)
    check_result_size(func, (N, C, HO, WO), 8)
    return Pool2dGeometry(N, C, H, W, kernel_size, stride, padding, dilation, HO, WO)


def _batched_input(func, x):
    if x.ndim not in (3, 4):
        raise ValueError(f"{func}: x must be 4-D (N, C, H, W) or 3-D (C, H, W), "
                         f"got shape {x.shape}")
    return (x, True) if x.ndim == 4 else (x[np.newaxis], False)


def pool2d_geometry(func, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate a pooling call on x (N, C, H, W) or unbatched (C, H, W). Returns (x, geometry,
    batched) with x 4-D."""
    x, batched = _batched_input(func, as_float_array(func, "x", x))
    geometry = pool2d_shape_geometry(func, x.shape, kernel_size, stride, padding, dilation,
                                     ceil_mode)
    return x, geometry, batched


def check_input_shape(func, input_shape):
    """A 4-tuple (N, C, H, W) or 3-tuple (C, H, W) of ints >= 0 (a list, or a 1-D integer array
    such as np.array(x.shape), also). Returns (4-D shape, batched)."""
    if (isinstance(input_shape, np.ndarray) and input_shape.ndim == 1
            and input_shape.dtype.kind in "iu"):
        input_shape = tuple(input_shape.tolist())
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4):
        raise ValueError(f"{func}: input_shape must be (N, C, H, W) or (C, H, W), "
                         f"got {_describe(input_shape)}")
    shape = tuple(check_int(func, "input_shape", extent, 0) for extent in input_shape)
    check_result_size(func, shape, 8, "input_shape (the shape of the gradient dx)")
    return (shape, True) if len(shape) == 4 else ((1,) + shape, False)


def check_gradient(func, dy, dtype_source, expected_shape, batched, description):
    """dy as an array of dtype_source's dtype and expected (4-D) shape, given with or without
    the batch axis as the forward input was; returns it 4-D."""
    dy = as_float_array(func, "dy", dy)
    if dtype_source is not None:
        check_same_dtype(func, [(dtype_source[0], dtype_source[1]), ("dy", dy)])
    expected = tuple(expected_shape) if batched else tuple(expected_shape[1:])
    if dy.shape != expected:
        raise ValueError(f"{func}: dy must have {description} {expected}, got {dy.shape}")
    return dy if batched else dy[np.newaxis]


def check_max_pool_indices(func, indices, dy):
    """Caller-supplied max-pool indices: integers of dy's shape, returned as int64. Their range
    is checked by the compiled backward pass itself, plane by plane before writing that plane
    (one pass over the indices instead of three); see `max_pool_index_error`."""
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{func}: indices must be an integer array, got dtype {indices.dtype}")
    if indices.shape != dy.shape:
        raise ValueError(f"{func}: indices must have the shape of dy {dy.shape}, "
                         f"got {indices.shape}")
    if indices.dtype == np.uint64 and indices.size and indices.max() > np.iinfo(np.int64).max:
        raise max_pool_index_error(func, int(indices.max()), None)
    return np.require(indices, np.int64, ALIGNED_C)


def max_pool_index_error(func, bad, plane_size):
    where = "their input plane" if plane_size is None else \
        f"[0, H*W = {plane_size}) of their input plane"
    return ValueError(
        f"{func}: indices must lie in {where}, got {bad} (a window wholly in the padding, "
        "possible with dilation > 1, gets PyTorch's index, which can lie past the plane; its "
        "output depends on no input: give it dy 0 and index 0, as the MaxPool2D layer does)")


def pool_windows_in_padding(geometry):
    """Masks (HO,) and (WO,) of the output rows and columns whose windows hold no input pixel:
    every tap falls in the padding (only possible with dilation > 1)."""
    def empty(out_size, size, kernel, stride, padding, dilation):
        first = np.arange(out_size)[:, None] * stride - padding
        taps = first + np.arange(kernel)[None, :] * dilation
        return ~((taps >= 0) & (taps < size)).any(axis=1)
    g = geometry
    return (empty(g.HO, g.H, g.kernel_size[0], g.stride[0], g.padding[0], g.dilation[0]),
            empty(g.WO, g.W, g.kernel_size[1], g.stride[1], g.padding[1], g.dilation[1]))


def check_norm_type(func, norm_type):
    """A real p > 0, or +inf or -inf (PyTorch's lp_pool2d takes those as the largest or smallest
    magnitude of each window); 2 for L2 pooling."""
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"{func}: norm_type must be a real number, got {_describe(norm_type)}")
    try:
        p = float(norm_type)
    except OverflowError:
        # An int past float's range is no infinity (PyTorch refuses it too): not +-inf pooling.
        raise ValueError(f"{func}: norm_type must be a number > 0 within float's range, inf or "
                         f"-inf, got {_describe(norm_type)}") from None
    if not (p > 0 or p == -math.inf):
        raise ValueError(f"{func}: norm_type must be a number > 0, inf or -inf, got {p}")
    return p
