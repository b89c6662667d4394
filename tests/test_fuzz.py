"""Hostile input: every public function, layer, the loss and the optimiser, called with
anything a caller might pass, never crashes, hangs or corrupts memory.

Each target draws a valid call (small shapes, exact values) and replaces up to three of its
arguments by hostile values (hypothesis, fixed seed): wrong ndim, dtypes (int, bool, complex,
float16, longdouble, object, str, datetime, structured), the other float dtype, mismatched and
zero-size shapes, negative / huge / bool / float / None / str parameters, lists and scalars for
arrays, NaN and Inf, out-of-range and wrong-dtype max-pool indices, and layouts that must work
(strided, Fortran, reversed, unaligned, byte-swapped, read-only, zero-stride). The property:
the call raises exactly TypeError or ValueError with a message ``"<function>: ..."`` naming an
argument, or returns the oracle's answer (tests/reference.py, float64); it never modifies an
input, never returns an output that shares memory with one. The worst cases also run in a child
process, so a crash fails a test instead of killing pytest.

The number of examples each target ran is printed at the end of the module. With
FASTCONV_FUZZ_CENSUS=1 a failing example is tallied instead of failing its test, so every
example runs and each kind of failure is listed once (with its shortest example).
"""
import collections
import decimal
import fractions
import math
import numbers
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastconv
from fastconv import _config, _geometry
from fastconv.layers import (
    AvgPool2D, Conv2D, Flatten, Linear, LPPool2D, MaxPool2D, ReLU, Sequential,
)
from fastconv.losses import softmax_cross_entropy
from fastconv.optim import SGD

from reference import (
    avg_pool2d_backward_reference, avg_pool2d_reference, conv2d_backward_reference,
    conv2d_reference, conv_transpose2d_reference, lp_pool2d_backward_reference,
    lp_pool2d_reference, max_pool2d_reference, pool_output_size, same_padding,
)

ISAS = _config.available_isas()
# Each target's example count is for the default hypothesis profile (40 examples a test); a
# thorough profile (FASTCONV_HYPOTHESIS_PROFILE=fastconv-thorough: 500) scales them up.
EXAMPLES_SCALE = max(1, settings.default.max_examples // 40)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# =============================================================================================
# The property every fuzzed call must satisfy
# =============================================================================================

class Violation(AssertionError):
    """A call that broke the contract: the wrong exception, a wrong answer, a modified input."""


FUZZ_EXAMPLES = collections.Counter()   # (target, "refused" | "computed" | "violated") -> count
CENSUS = os.environ.get("FASTCONV_FUZZ_CENSUS") == "1"
CENSUS_FAILURES = collections.defaultdict(dict)  # target -> {kind: shortest example}

# What a message may name besides the arguments themselves: an error about sizes names the
# result or output (made from several arguments), a kernel too large for its input the kernel.
SIZE_WORDS = ("result", "output", "kernel", "input")
# Messages of these shapes must come with TypeError; the others with ValueError.
# ("must be an int or a pair of ints" may be either: a float is a TypeError, three ints a
# ValueError.)
TYPE_ERROR_MESSAGE = re.compile(
    r"must be (an int|a bool|a real number|a number"
    r"|a float32 or float64 array|an integer array|integers|fastconv layers|numeric"
    r"|a dict of arrays), got"
    r"|must be a str \(|must have the dtype of|dtype must be float32 or float64, got")


@dataclass
class Target:
    """One public entry point under fuzz.

    run(args) calls it; args maps argument names to values. prefixes: the function names its
    errors may start with (a layer's forward reports the operator it calls). check(args,
    result) compares an accepted call's result with the oracle and raises Violation if wrong.
    """
    name: str
    run: object
    arguments: object            # strategy of (valid args, hostile strategies by name)
    check: object
    prefixes: tuple = ()
    words: tuple = ()
    examples: int = 100

    def __post_init__(self):
        self.prefixes = self.prefixes or (self.name,)


def _arrays_in(value):
    """Every ndarray inside value (nested lists, tuples and dicts)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _arrays_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays_in(item)


def _snapshot(array):
    return array.dtype, array.shape, array.tobytes()


def _check_error(target, args, error):
    message = str(error)
    if type(error) not in (TypeError, ValueError):
        raise Violation(f"{target.name} raised {type(error).__name__}, not TypeError or "
                        f"ValueError: {message}")
    prefix = next((p for p in target.prefixes if message.startswith(p + ": ")), None)
    if prefix is None:
        raise Violation(f"{target.name}: message does not start with one of "
                        f"{[p + ': ' for p in target.prefixes]}: {type(error).__name__}: {message}")
    rest = message[len(prefix) + 2:]
    words = tuple(args) + target.words + SIZE_WORDS
    if not any(re.search(rf"\b{re.escape(word)}\b", rest) for word in words):
        raise Violation(f"{target.name}: message names no argument: {message}")
    expected = TypeError if TYPE_ERROR_MESSAGE.search(rest) else ValueError
    if type(error) is not expected and "must be an int or a pair of ints" not in rest:
        raise Violation(f"{target.name}: {type(error).__name__} for a message that calls for "
                        f"{expected.__name__}: {message}")


def run_target(target, args):
    """Call target with args and check the property; returns "refused" or "computed"."""
    inputs = list(_arrays_in(args))
    before = [_snapshot(a) for a in inputs]
    try:
        result = target.run(args)
    except (Violation, KeyboardInterrupt):
        raise
    except Exception as error:
        _check_error(target, args, error)
        outcome = "refused"
    else:
        for out in _arrays_in(result):
            for a in inputs:
                if np.shares_memory(out, a):
                    raise Violation(f"{target.name}: an output of shape {out.shape} shares "
                                    f"memory with an input of shape {a.shape}")
        target.check(args, result)
        outcome = "computed"
    for a, snapshot in zip(inputs, before):
        if _snapshot(a) != snapshot:
            raise Violation(f"{target.name}: modified an input of shape {a.shape}")
    return outcome


# =============================================================================================
# Oracles' view of accepted arguments: anything that is not an int / float array here was
# accepted but should not have been.
# =============================================================================================

def _int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise Violation(f"accepted {name}={value!r}, not an int")
    if int(value) < minimum:
        raise Violation(f"accepted {name}={value!r} < {minimum}")
    return int(value)


def _pair(value, name, minimum):
    if isinstance(value, np.ndarray):
        items = list(value.ravel())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value, value]
    if len(items) == 1:         # one element stands for both axes, as in PyTorch
        items = items * 2
    if len(items) != 2:
        raise Violation(f"accepted {name}={value!r}, not an int or a pair")
    return tuple(_int(item, name, minimum) for item in items)


def _float_array(value, name):
    array = np.asarray(value)
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise Violation(f"accepted {name} of dtype {array.dtype}")
    return array


def _bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise Violation(f"accepted {name}={value!r}, not a bool")
    return bool(value)


def _truth_flag(value, name):
    """A bool, or the int 0 or 1 (PyTorch takes return_indices by truthiness)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if value not in (0, 1):
            raise Violation(f"accepted {name}={value!r}, not 0 or 1")
        return bool(value)
    return _bool(value, name)


RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _batched(array):
    return array if array.ndim == 4 else array[np.newaxis]


def assert_matches(name, got, ref, scale, dtype, exact_nonfinite=True):
    """got (fastconv, dtype) against ref (float64 oracle): same shape and dtype; where ref is
    finite, |got - ref| <= RTOL * scale (scale: the oracle on |inputs|, the sum of |terms|);
    where ref is NaN or +-Inf, got is the same (or, with exact_nonfinite=False, non-finite)."""
    dtype = np.dtype(dtype).newbyteorder("=")       # byte-swapped inputs give native results
    if got.dtype != dtype or got.shape != ref.shape:
        raise Violation(f"{name}: result {got.dtype}{got.shape}, expected {dtype}{ref.shape}")
    got64 = got.astype(np.float64)
    finite = np.isfinite(ref)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = finite & ~(np.abs(got64 - ref) <= RTOL[dtype] * np.where(finite, scale, 0) + 1e-300)
    if exact_nonfinite:
        same = (np.isnan(ref) & np.isnan(got64)) | (ref == got64)
    else:
        same = ~np.isfinite(got64)
    bad |= ~finite & ~same
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        raise Violation(f"{name}: {bad.sum()} of {bad.size} values wrong, first at {where}: "
                        f"got {got64[where]!r}, expected {ref[where]!r}")


# =============================================================================================
# Hostile values
# =============================================================================================

VALUES = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
SMALL_INTS = [-2, -1, 0, 1, 2, 3]
# Huge enough that any result they make is refused by its size: values at the int32 boundary
# (which could make 8-16 GiB results, legitimately) are in test_int32_boundary_parameters.
HUGE_INTS = [2**34 + 1, 2**40, 2**40 + 1, 2**62, 2**63 - 1, 2**63, 2**64 + 1, 10**30, -2**63]
NUMPY_INTS = [np.int8(2), np.int8(-1), np.uint8(3), np.int64(-1), np.uint64(2**64 - 1),
              np.int32(1)]
NOT_INTS = [True, False, np.bool_(True), 1.0, 2.5, float("nan"), float("inf"), None, "1",
            "same", b"1", 1j, fractions.Fraction(2), decimal.Decimal(2), object(), {},
            np.float32(2), np.array([2, 2]), np.array([2.0, 2.0]), np.array([[1, 2]]),
            np.array(2), np.array([], int)]
BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.float16,
              np.longdouble, np.complex64, np.complex128, object, "U3", "S3", "M8[s]",
              [("a", np.float32)]]


def hostile_ints(extra=()):
    """Anything a caller might pass for an int or (h, w) parameter."""
    scalar = st.sampled_from(SMALL_INTS + HUGE_INTS + NUMPY_INTS + NOT_INTS + list(extra))
    return st.one_of(scalar, scalar, st.lists(scalar, max_size=3),
                     st.lists(scalar, max_size=3).map(tuple))


def hostile_bools():
    return st.sampled_from([True, False, np.bool_(False), 0, 1, None, "True", 1.0, [True]])


def hostile_reals():
    return st.sampled_from([2, 1, 3, 2.5, 0.5, np.float32(2), fractions.Fraction(3, 2), 0,
                            -1, float("inf"), float("nan"), True, None, "2", 1j, 10**400,
                            decimal.Decimal(2), np.array(2.0), [2]])


def hostile_shapes():
    extent = st.sampled_from(SMALL_INTS + HUGE_INTS + NUMPY_INTS + [1.0, None, True, "2"])
    return st.one_of(st.lists(extent, max_size=5).map(tuple), st.lists(extent, max_size=5),
                     st.sampled_from([None, 4, "1,1,4,4", np.array([1, 1, 4, 4]), (1, 1, 4.5, 4)]))


def _unaligned(array):
    buffer = np.zeros(array.nbytes + array.itemsize, np.uint8)
    view = np.frombuffer(buffer, array.dtype, count=array.size, offset=1).reshape(array.shape)
    view[...] = array
    return view


def _strided(array):
    if array.ndim == 0:
        return array.copy()
    big = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), array.dtype)
    big[..., ::2] = array
    return big[..., ::2]


def _readonly(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def _with_nonfinite(array, index, value):
    array = array.copy()
    if array.size:
        array.flat[index % array.size] = value
    return array


def _zero_extent(array, axis):
    if array.ndim == 0:
        return np.zeros(0, array.dtype)
    shape = list(array.shape)
    shape[axis % array.ndim] = 0
    return np.ones(shape, array.dtype)


def _other_ndim(array, how):
    if how == 0:
        return array[np.newaxis]
    if how == 1:
        return array.reshape(-1)
    if how == 2:
        return array[0] if array.ndim and array.shape[0] else np.zeros(array.shape[1:], array.dtype)
    return array.reshape(array.shape + (1,))


def _as_bad_dtype(array, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return array.astype(dtype) if dtype.kind != "u" else np.abs(array).astype(dtype)
    if dtype.kind in "fcO":
        return array.astype(dtype)
    return np.zeros(array.shape, dtype)


def hostile_arrays(valid, nonfinite=True):
    """Arrays a caller might pass where `valid` belongs: the same values in other dtypes,
    layouts (strided, Fortran, reversed, unaligned, big-endian, read-only, broadcast; these must
    give the right answer), NaN / Inf inside, another ndim or shape, zero-size, nested lists,
    scalars and non-arrays."""
    layouts = [st.just(valid.astype(valid.dtype.newbyteorder(">"))), st.just(_strided(valid)),
               st.just(np.asfortranarray(valid)), st.just(_readonly(valid)),
               st.just(_unaligned(valid))]
    if valid.ndim:
        layouts.append(st.just(np.flip(np.flip(valid).copy())))
        layouts.append(st.just(np.broadcast_to(valid[:1], valid.shape)))
    options = [
        st.sampled_from(BAD_DTYPES).map(lambda dtype: _as_bad_dtype(valid, dtype)),
        st.just(valid.astype(np.float64 if valid.dtype == np.float32 else np.float32)),
        st.one_of(*layouts),
        st.integers(0, 3).map(lambda how: _other_ndim(valid, how)),
        st.integers(-4, 3).map(lambda axis: _zero_extent(valid, axis)),
        st.lists(st.integers(0, 5), min_size=0, max_size=5).map(
            lambda shape: np.ones(shape, valid.dtype)),
        st.just(valid.tolist()),
        st.sampled_from([1.0, 1, True, None, "abc", 1j, [], [[1.0], [1.0, 2.0]], object(),
                         {"x": 1}, np.float32(1)]),
    ]
    if nonfinite:
        options.append(st.tuples(st.integers(0, 10**6),
                                 st.sampled_from([np.nan, np.inf, -np.inf])).map(
            lambda iv: _with_nonfinite(valid, *iv)))
    return st.one_of(*options)


def random_array(seed, shape, dtype):
    """Small exact values (sums and products stay exact in float32)."""
    return np.random.default_rng(seed).choice(VALUES, size=shape).astype(dtype)


@st.composite
def calls(draw, arguments):
    """The arguments of one call: arguments draws (valid args, hostile strategies by name); up
    to three of the valid ones are replaced by a hostile value (none: a valid call)."""
    valid, hostile = draw(arguments)
    names = draw(st.sets(st.sampled_from(sorted(hostile)), max_size=3))
    args = dict(valid)
    for name in sorted(names):
        args[name] = draw(hostile[name])
    return args


# =============================================================================================
# Targets: the operators
# =============================================================================================

def _dtypes():
    return st.sampled_from([np.float32, np.float64])


def _padding_pairs(padding, kernel, dilation):
    if isinstance(padding, str) and padding in ("same", "valid"):
        return same_padding(kernel, dilation) if padding == "same" else ((0, 0), (0, 0))
    ph, pw = _pair(padding, "padding", 0)
    return (ph, ph), (pw, pw)


@st.composite
def conv2d_arguments(draw):
    dtype = draw(_dtypes())
    groups = draw(st.integers(1, 2))
    C, K = groups * draw(st.integers(0, 2)), groups * draw(st.integers(0, 3))
    N, H, W = draw(st.integers(0, 2)), draw(st.integers(0, 7)), draw(st.integers(0, 7))
    FH, FW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    x = random_array(seed, (N, C, H, W) if draw(st.booleans()) else (C, H, W), dtype)
    valid = dict(x=x, w=random_array(seed + 1, (K, C // groups, FH, FW), dtype),
                 b=random_array(seed + 2, (K,), dtype) if draw(st.booleans()) else None,
                 stride=draw(st.sampled_from([1, 2, 3, (1, 2), [2, 1]])),
                 padding=draw(st.sampled_from([0, 1, 2, (1, 0), "same", "valid"])),
                 dilation=draw(st.sampled_from([1, 2, (2, 1)])), groups=groups,
                 algorithm=draw(st.sampled_from(["auto", "direct", "im2col"])))
    hostile = dict(x=hostile_arrays(valid["x"]), w=hostile_arrays(valid["w"], nonfinite=False),
                   b=st.one_of(st.none(), hostile_arrays(random_array(seed, (K,), dtype),
                                                         nonfinite=False)),
                   stride=hostile_ints([2**31, 2**32 + 1]), dilation=hostile_ints(),
                   padding=st.one_of(hostile_ints(), st.sampled_from(["SAME", "", "full"])),
                   groups=hostile_ints(),
                   algorithm=st.sampled_from(["AUTO", "", None, 1, b"auto", ["auto"], "gemm"]))
    return valid, hostile


# The oracles of reference.py pad the input (or build the full transposed output) densely.
# Hostile but valid calls can pad by 2**34 and stride by 2**40 for a one-pixel result; these
# loop over the result's taps instead, which is cheap exactly then.
DENSE_LIMIT = 10**6


def _conv2d_sparse(x, w, b, stride, padding, dilation, groups, HO, WO):
    """conv2d by its definition, tap by tap (reference.conv2d_reference_pointwise), returning
    (y, sum of |terms|) without padding anything."""
    (top, _), (left, _) = padding
    N, K, KG, CG = x.shape[0], w.shape[0], w.shape[0] // groups, w.shape[1]
    y = np.zeros((N, K, HO, WO)) + (0 if b is None else b[:, None, None])
    scale = np.zeros((N, K, HO, WO)) + (0 if b is None else np.abs(b)[:, None, None])
    H, W = x.shape[2:]
    for n, k, ho, wo, ci, fh, fw in np.ndindex(N, K, HO, WO, CG, *w.shape[2:]):
        h = ho * stride[0] + fh * dilation[0] - top
        col = wo * stride[1] + fw * dilation[1] - left
        if 0 <= h < H and 0 <= col < W:
            term = w[k, ci, fh, fw] * x[n, k // KG * CG + ci, h, col]
            y[n, k, ho, wo] += term
            scale[n, k, ho, wo] += abs(term)
    return y, scale


def _conv2d_backward_sparse(dy, x, w, stride, padding, dilation, groups):
    """(dx, dw, db) and their sums of |terms|, tap by tap, without padding anything."""
    (top, _), (left, _) = padding
    N, K, HO, WO = dy.shape
    KG, CG = K // groups, w.shape[1]
    H, W = x.shape[2:]
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    sx, sw = np.zeros(x.shape), np.zeros(w.shape)
    for n, k, ho, wo, ci, fh, fw in np.ndindex(N, K, HO, WO, CG, *w.shape[2:]):
        h = ho * stride[0] + fh * dilation[0] - top
        col = wo * stride[1] + fw * dilation[1] - left
        if 0 <= h < H and 0 <= col < W:
            c = k // KG * CG + ci
            dx[n, c, h, col] += w[k, ci, fh, fw] * dy[n, k, ho, wo]
            sx[n, c, h, col] += abs(w[k, ci, fh, fw] * dy[n, k, ho, wo])
            dw[k, ci, fh, fw] += x[n, c, h, col] * dy[n, k, ho, wo]
            sw[k, ci, fh, fw] += abs(x[n, c, h, col] * dy[n, k, ho, wo])
    return (dx, dw, dy.sum(axis=(0, 2, 3))), (sx, sw, np.abs(dy).sum(axis=(0, 2, 3)))


def _conv_transpose2d_sparse(x, w, b, stride, padding, output_padding, groups, dilation):
    """conv_transpose2d by scattering each input pixel's taps into the (cropped) result."""
    N, C_in, H, W = x.shape
    COG, FH, FW = w.shape[1:]
    HO, WO = ((size - 1) * s - 2 * p + d * (f - 1) + op + 1 for size, s, p, d, f, op in
              zip((H, W), stride, padding, dilation, (FH, FW), output_padding))
    y = np.zeros((N, COG * groups, HO, WO)) + (0 if b is None else b[:, None, None])
    scale = np.abs(y)
    CIG = C_in // groups
    for n, ci, h, col, co, fh, fw in np.ndindex(N, C_in, H, W, COG, FH, FW):
        ho = h * stride[0] + fh * dilation[0] - padding[0]
        wo = col * stride[1] + fw * dilation[1] - padding[1]
        if 0 <= ho < HO and 0 <= wo < WO:
            term = x[n, ci, h, col] * w[ci, co, fh, fw]
            y[n, ci // CIG * COG + co, ho, wo] += term
            scale[n, ci // CIG * COG + co, ho, wo] += abs(term)
    return y, scale


def _empty_result(name, got, shape, dtype):
    """A result with no element: only its shape and dtype can be checked (the dense oracles
    would build its huge but empty padded extents)."""
    if got.shape != tuple(shape) or got.dtype != np.dtype(dtype).newbyteorder("="):
        raise Violation(f"{name}: result {got.dtype}{got.shape}, expected {dtype}{tuple(shape)}")


def check_conv2d(args, y):
    x, w = _float_array(args["x"], "x"), _float_array(args["w"], "w")
    b = None if args["b"] is None else _float_array(args["b"], "b")
    kernel = w.shape[2:]
    stride = _pair(args["stride"], "stride", 1)
    dilation = _pair(args["dilation"], "dilation", 1)
    padding = _padding_pairs(args["padding"], kernel, dilation)
    groups = _int(args["groups"], "groups", 1)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y4, x4 = (_batched(y) if x.ndim == 3 else y), _batched(x)
    H, W = x4.shape[2] + sum(padding[0]), x4.shape[3] + sum(padding[1])
    HO = (H - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    WO = (W - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    if y.size == 0:
        return _empty_result("conv2d", y4, (x4.shape[0], w.shape[0], HO, WO), x.dtype)
    if H * W > DENSE_LIMIT:
        ref, scale = _conv2d_sparse(x4, w, b, stride, padding, dilation, groups, HO, WO)
    else:
        ref = conv2d_reference(x4, w, b, **kwargs)
        scale = conv2d_reference(np.abs(x4), np.abs(w), None if b is None else np.abs(b),
                                 **kwargs)
    assert_matches("conv2d", y4, ref, scale, x.dtype)


@st.composite
def conv2d_backward_arguments(draw):
    valid, hostile = draw(conv2d_arguments())
    del valid["b"], valid["algorithm"], hostile["b"], hostile["algorithm"]
    x, w = valid["x"], valid["w"]
    try:
        y = fastconv.conv2d(x, w, None, valid["stride"], valid["padding"], valid["dilation"],
                            valid["groups"])
        shape = y.shape
    except ValueError:          # a kernel larger than the input: dy of some shape anyway
        shape = x.shape[:-3] + (w.shape[0], 1, 1)
    valid["dy"] = random_array(draw(st.integers(0, 2**32 - 1)), shape, x.dtype)
    hostile["dy"] = hostile_arrays(valid["dy"])
    return valid, hostile


def check_conv2d_backward(args, grads):
    dy, x, w = (_float_array(args[name], name) for name in ("dy", "x", "w"))
    stride = _pair(args["stride"], "stride", 1)
    dilation = _pair(args["dilation"], "dilation", 1)
    padding = _padding_pairs(args["padding"], w.shape[2:], dilation)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation,
                  groups=_int(args["groups"], "groups", 1))
    dy4, x4 = _batched(dy), _batched(x)
    dx, dw, db = grads
    if dy.size == 0 or x.size == 0:
        # nothing flows back: zeros (db sums dy all the same), in the inputs' shapes
        refs = (np.zeros(x4.shape), np.zeros(w.shape), dy4.sum(axis=(0, 2, 3)))
        scales = (np.zeros(x4.shape), np.zeros(w.shape), np.abs(dy4).sum(axis=(0, 2, 3)))
    elif (x4.shape[2] + sum(padding[0])) * (x4.shape[3] + sum(padding[1])) > DENSE_LIMIT:
        refs, scales = _conv2d_backward_sparse(dy4.astype(np.float64), x4.astype(np.float64),
                                               w.astype(np.float64), **kwargs)
    else:
        refs = conv2d_backward_reference(dy4, x4, w, **kwargs)
        scales = conv2d_backward_reference(np.abs(dy4), np.abs(x4), np.abs(w), **kwargs)
    for name, got, ref, scale in zip(("dx", "dw", "db"), (_batched(dx) if x.ndim == 3 else dx,
                                                         dw, db), refs, scales):
        assert_matches(f"conv2d_backward {name}", got, ref, scale, x.dtype)


@st.composite
def conv_transpose2d_arguments(draw):
    dtype = draw(_dtypes())
    groups = draw(st.integers(1, 2))
    C_in, C_out = groups * draw(st.integers(0, 2)), groups * draw(st.integers(0, 2))
    N, H, W = draw(st.integers(0, 2)), draw(st.integers(0, 5)), draw(st.integers(0, 5))
    FH, FW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    x = random_array(seed, (N, C_in, H, W) if draw(st.booleans()) else (C_in, H, W), dtype)
    valid = dict(x=x, w=random_array(seed + 1, (C_in, C_out // groups, FH, FW), dtype),
                 b=random_array(seed + 2, (C_out,), dtype) if draw(st.booleans()) else None,
                 stride=draw(st.sampled_from([1, 2, 3, (1, 2)])),
                 padding=draw(st.sampled_from([0, 1, (1, 0)])),
                 output_padding=draw(st.sampled_from([0, 1, (0, 1)])), groups=groups,
                 dilation=draw(st.sampled_from([1, 2, (2, 1)])))
    hostile = dict(x=hostile_arrays(x), w=hostile_arrays(valid["w"], nonfinite=False),
                   b=st.one_of(st.none(), hostile_arrays(random_array(seed, (C_out,), dtype),
                                                         nonfinite=False)),
                   stride=hostile_ints(), padding=hostile_ints(), output_padding=hostile_ints(),
                   groups=hostile_ints(), dilation=hostile_ints())
    return valid, hostile


def check_conv_transpose2d(args, y):
    x, w = _float_array(args["x"], "x"), _float_array(args["w"], "w")
    b = None if args["b"] is None else _float_array(args["b"], "b")
    kwargs = dict(stride=_pair(args["stride"], "stride", 1),
                  padding=_pair(args["padding"], "padding", 0),
                  output_padding=_pair(args["output_padding"], "output_padding", 0),
                  groups=_int(args["groups"], "groups", 1),
                  dilation=_pair(args["dilation"], "dilation", 1))
    x4 = _batched(x)
    HO, WO = ((size - 1) * s - 2 * p + d * (f - 1) + op + 1 for size, s, p, d, f, op in
              zip(x4.shape[2:], kwargs["stride"], kwargs["padding"], kwargs["dilation"],
                  w.shape[2:], kwargs["output_padding"]))
    shape = (x4.shape[0], w.shape[1] * kwargs["groups"], HO, WO)
    if y.size == 0:
        return _empty_result("conv_transpose2d", _batched(y) if x.ndim == 3 else y, shape,
                             x.dtype)
    if 0 in x.shape[-2:]:       # no input pixel: the bias alone (the oracle needs one)
        ref = np.zeros(shape) + (0 if b is None else b[:, None, None])
        scale = np.abs(ref)
    elif (HO + 2 * max(kwargs["padding"])) * (WO + 2 * max(kwargs["padding"])) > DENSE_LIMIT:
        ref, scale = _conv_transpose2d_sparse(x4.astype(np.float64), w.astype(np.float64),
                                              None if b is None else b.astype(np.float64),
                                              **kwargs)
    else:
        ref = conv_transpose2d_reference(_batched(x), w, b, **kwargs)
        scale = conv_transpose2d_reference(np.abs(_batched(x)), np.abs(w),
                                           None if b is None else np.abs(b), **kwargs)
    assert_matches("conv_transpose2d", _batched(y) if x.ndim == 3 else y, ref, scale, x.dtype)


@st.composite
def pool_input(draw, max_extent=7):
    dtype = draw(_dtypes())
    N, C = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    H, W = draw(st.integers(0, max_extent)), draw(st.integers(0, max_extent))
    seed = draw(st.integers(0, 2**32 - 1))
    return random_array(seed, (N, C, H, W) if draw(st.booleans()) else (C, H, W), dtype)


@st.composite
def max_pool2d_arguments(draw):
    x = draw(pool_input())
    valid = dict(x=x, kernel_size=draw(st.sampled_from([1, 2, 3, (2, 1), (1, 3)])),
                 stride=draw(st.sampled_from([None, 1, 2, (1, 2)])),
                 padding=draw(st.sampled_from([0, 1, (1, 0)])),
                 dilation=draw(st.sampled_from([1, 2, (1, 2)])),
                 ceil_mode=draw(st.booleans()), return_indices=draw(st.booleans()))
    hostile = dict(x=hostile_arrays(x), kernel_size=hostile_ints(),
                   stride=st.one_of(st.none(), hostile_ints([2**31, 2**32 + 1])),
                   padding=hostile_ints(), dilation=hostile_ints([2**31, 2**32 + 1]),
                   ceil_mode=hostile_bools(), return_indices=hostile_bools())
    return valid, hostile


def _pool_kwargs(args, dilation=True, padding=True):
    kernel = _pair(args["kernel_size"], "kernel_size", 1)
    stride = args["stride"]
    # None, or an empty sequence as in PyTorch, means the kernel size
    if stride is None or (isinstance(stride, (list, tuple)) and not stride):
        stride = kernel
    kwargs = dict(kernel_size=kernel, stride=_pair(stride, "stride", 1),
                  ceil_mode=_bool(args["ceil_mode"], "ceil_mode"))
    if padding:
        kwargs["padding"] = _pair(args["padding"], "padding", 0)
    if dilation:
        kwargs["dilation"] = _pair(args["dilation"], "dilation", 1)
    return kwargs


def _pool_shape(x, kwargs):
    """The pooled shape of x (batched or not) by PyTorch's rule."""
    out = [pool_output_size(size, k, s, p, d, kwargs["ceil_mode"]) for size, k, s, p, d in
           zip(x.shape[-2:], kwargs["kernel_size"], kwargs["stride"],
               kwargs.get("padding", (0, 0)), kwargs.get("dilation", (1, 1)))]
    return x.shape[:-2] + tuple(out)


def check_max_pool2d(args, result):
    x = _float_array(args["x"], "x")
    with_indices = _truth_flag(args["return_indices"], "return_indices")
    y, indices = result if with_indices else (result, None)
    if y.size == 0:
        return _empty_result("max_pool2d", y, _pool_shape(x, _pool_kwargs(args)), x.dtype)
    ref, ref_indices = max_pool2d_reference(_batched(x), **_pool_kwargs(args))
    assert_matches("max_pool2d", _batched(y) if x.ndim == 3 else y, ref, np.zeros_like(ref),
                   x.dtype)
    if with_indices:
        indices = _batched(indices) if x.ndim == 3 else indices
        if indices.dtype != np.int64 or not np.array_equal(indices, ref_indices):
            raise Violation(f"max_pool2d: indices {indices.dtype} {indices.ravel()[:8]}, "
                            f"expected {ref_indices.ravel()[:8]}")


@st.composite
def max_pool2d_backward_arguments(draw):
    x = draw(pool_input())
    y, indices = (np.zeros((1, 1, 1, 1), x.dtype), np.zeros((1, 1, 1, 1), np.int64))
    if x.size:
        y, indices = fastconv.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
    seed = draw(st.integers(0, 2**32 - 1))
    valid = dict(dy=random_array(seed, y.shape, x.dtype), indices=indices, input_shape=x.shape)
    plane = x.shape[-1] * x.shape[-2]
    bad_indices = [indices + plane, indices - plane - 1, np.full_like(indices, -1),
                   np.full_like(indices, 2**63 - 1), np.full_like(indices, -2**63),
                   indices.astype(np.uint64) + np.uint64(2**63), indices.astype(np.int8),
                   indices.astype(np.int32), indices.astype(np.uint16), indices.astype(">i8"),
                   indices.astype(np.float64), indices.astype(bool), indices.astype(object),
                   _strided(indices), _unaligned(indices), indices.tolist(), indices[..., :0],
                   indices[np.newaxis], indices.reshape(-1)]
    hostile = dict(dy=hostile_arrays(valid["dy"]),
                   indices=st.one_of(st.sampled_from(bad_indices), st.just(None),
                                     st.integers(-3, 3).map(lambda v: np.full_like(indices, v))),
                   input_shape=hostile_shapes())
    return valid, hostile


def max_pool2d_backward_oracle(dy, indices, input_shape):
    dx = np.zeros((int(np.prod(input_shape[:-2])), input_shape[-2] * input_shape[-1]))
    planes = dy.reshape(dx.shape[0], -1)
    for p in range(dx.shape[0]):
        np.add.at(dx[p], indices.reshape(dx.shape[0], -1)[p], planes[p])
    return dx.reshape(input_shape)


def check_max_pool2d_backward(args, dx):
    dy = _float_array(args["dy"], "dy")
    indices = np.asarray(args["indices"])
    if indices.dtype.kind not in "iu":
        raise Violation(f"max_pool2d_backward: accepted indices of dtype {indices.dtype}")
    shape = tuple(_int(v, "input_shape", 0) for v in args["input_shape"])
    plane = shape[-1] * shape[-2]
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise Violation(f"max_pool2d_backward: accepted indices outside [0, {plane})")
    ref = max_pool2d_backward_oracle(dy.astype(np.float64), indices.astype(np.int64), shape)
    scale = max_pool2d_backward_oracle(np.abs(dy.astype(np.float64)), indices.astype(np.int64),
                                       shape)
    assert_matches("max_pool2d_backward", dx, ref, scale, dy.dtype)


@st.composite
def avg_pool2d_arguments(draw):
    x = draw(pool_input())
    valid = dict(x=x, kernel_size=draw(st.sampled_from([1, 2, 3, (2, 1), (1, 3)])),
                 stride=draw(st.sampled_from([None, 1, 2, (1, 2)])),
                 padding=draw(st.sampled_from([0, 1, (1, 0)])), ceil_mode=draw(st.booleans()),
                 count_include_pad=draw(st.booleans()),
                 divisor_override=draw(st.sampled_from([None, 1, 3, -2])))
    hostile = dict(x=hostile_arrays(x), kernel_size=hostile_ints(),
                   stride=st.one_of(st.none(), hostile_ints([2**31, 2**32 + 1])),
                   padding=hostile_ints(), ceil_mode=hostile_bools(),
                   count_include_pad=hostile_bools(),
                   divisor_override=st.one_of(st.none(), hostile_ints()))
    return valid, hostile


def _avg_options(args):
    kwargs = _pool_kwargs(args, dilation=False)
    kwargs["count_include_pad"] = _bool(args["count_include_pad"], "count_include_pad")
    divisor = args["divisor_override"]
    # Any non-zero int, negative too (PyTorch divides by it).
    kwargs["divisor_override"] = None if divisor is None else _int(divisor, "divisor_override",
                                                                   -2**40)
    if kwargs["divisor_override"] == 0:
        raise Violation("accepted divisor_override=0")
    return kwargs


def check_avg_pool2d(args, y):
    x = _float_array(args["x"], "x")
    kwargs = _avg_options(args)
    if y.size == 0:
        return _empty_result("avg_pool2d", y, _pool_shape(x, kwargs), x.dtype)
    ref = avg_pool2d_reference(_batched(x), **kwargs)
    # A magnitude: a negative divisor_override makes the sums of |terms| negative.
    scale = np.abs(avg_pool2d_reference(np.abs(_batched(x)), **kwargs))
    assert_matches("avg_pool2d", _batched(y) if x.ndim == 3 else y, ref, scale, x.dtype)


@st.composite
def avg_pool2d_backward_arguments(draw):
    valid, hostile = draw(avg_pool2d_arguments())
    x = valid.pop("x")
    del hostile["x"]
    try:
        shape = fastconv.avg_pool2d(x, **{k: v for k, v in valid.items()}).shape
    except ValueError:
        shape = x.shape[:-2] + (1, 1)
    valid["dy"] = random_array(draw(st.integers(0, 2**32 - 1)), shape, x.dtype)
    valid["input_shape"] = x.shape
    hostile["dy"] = hostile_arrays(valid["dy"])
    hostile["input_shape"] = hostile_shapes()
    return valid, hostile


def check_avg_pool2d_backward(args, dx):
    dy = _float_array(args["dy"], "dy")
    shape = tuple(_int(v, "input_shape", 0) for v in args["input_shape"])
    batched = (lambda a: a) if len(shape) == 4 else _batched
    kwargs = _avg_options(args)
    ref = avg_pool2d_backward_reference(batched(dy), (1,) * (4 - len(shape)) + shape, **kwargs)
    scale = np.abs(avg_pool2d_backward_reference(np.abs(batched(dy)),
                                                 (1,) * (4 - len(shape)) + shape, **kwargs))
    assert_matches("avg_pool2d_backward", batched(dx), ref, scale, dy.dtype)


@st.composite
def lp_pool2d_arguments(draw):
    x = draw(pool_input())
    valid = dict(x=x, norm_type=draw(st.sampled_from([1, 2, 3, 2.5, math.inf, -math.inf])),
                 kernel_size=draw(st.sampled_from([1, 2, 3, (2, 1)])),
                 stride=draw(st.sampled_from([None, 1, 2])), ceil_mode=draw(st.booleans()))
    hostile = dict(x=hostile_arrays(x), norm_type=hostile_reals(), kernel_size=hostile_ints(),
                   stride=st.one_of(st.none(), hostile_ints([2**31, 2**32 + 1])),
                   ceil_mode=hostile_bools())
    return valid, hostile


def _norm(args):
    """p > 0 or +-inf (PyTorch's max / min of |x|); an int past float's range is no infinity."""
    p = args["norm_type"]
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise Violation(f"accepted norm_type={p!r}")
    try:
        value = float(p)
    except OverflowError:
        raise Violation(f"accepted norm_type={p!r}") from None
    if not (value > 0 or value == -math.inf):
        raise Violation(f"accepted norm_type={p!r}")
    return value


def check_lp_pool2d(args, y):
    x = _float_array(args["x"], "x")
    kwargs = _pool_kwargs(args, dilation=False, padding=False)
    p = _norm(args)
    if y.size == 0:
        return _empty_result("lp_pool2d", y, _pool_shape(x, kwargs), x.dtype)
    with np.errstate(all="ignore"):
        ref = lp_pool2d_reference(_batched(x), p, **kwargs)
    assert_matches("lp_pool2d", _batched(y) if x.ndim == 3 else y, ref, np.abs(ref) * 10,
                   x.dtype, exact_nonfinite=False)


@st.composite
def lp_pool2d_backward_arguments(draw):
    valid, hostile = draw(lp_pool2d_arguments())
    x = valid["x"]
    try:
        with np.errstate(all="ignore"):
            shape = fastconv.lp_pool2d(**valid).shape
    except ValueError:
        shape = x.shape[:-2] + (1, 1)
    valid["dy"] = random_array(draw(st.integers(0, 2**32 - 1)), shape, x.dtype)
    hostile["dy"] = hostile_arrays(valid["dy"])
    return valid, hostile


def check_lp_pool2d_backward(args, dx):
    x, dy = _float_array(args["x"], "x"), _float_array(args["dy"], "dy")
    kwargs = _pool_kwargs(args, dilation=False, padding=False)
    p = _norm(args)
    with np.errstate(all="ignore"):
        ref = lp_pool2d_backward_reference(_batched(dy), _batched(x), p, **kwargs)
    if math.isfinite(p) and p != int(p):
        # x**(p-1) is NaN at a negative x, and so is dx there even outside every window
        # (0 * NaN), as in PyTorch's autograd; the oracle says 0. Compare the rest.
        ref = np.where(_batched(x) < 0, np.nan, ref)
    # Rounding in y**(p-1) and in the powers: relative to the largest gradient of the plane.
    scale = np.broadcast_to(np.nanmax(np.abs(np.where(np.isfinite(ref), ref, 0)), initial=1),
                            ref.shape) * 100
    assert_matches("lp_pool2d_backward", _batched(dx) if x.ndim == 3 else dx, ref, scale,
                   x.dtype, exact_nonfinite=False)


@st.composite
def conv_output_size_arguments(draw):
    valid = dict(size=draw(st.integers(1, 300)), kernel_size=draw(st.integers(1, 7)),
                 stride=draw(st.integers(1, 4)), padding=draw(st.integers(0, 3)),
                 dilation=draw(st.integers(1, 3)))
    scalar = st.sampled_from(SMALL_INTS + HUGE_INTS + NUMPY_INTS + NOT_INTS)
    return valid, {name: scalar for name in valid}


def check_conv_output_size(args, out):
    size = _int(args["size"], "size", 1)
    kernel, stride = _int(args["kernel_size"], "kernel_size", 1), _int(args["stride"], "stride", 1)
    padding, dilation = _int(args["padding"], "padding", 0), _int(args["dilation"], "dilation", 1)
    expected = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if type(out) is not int or out != expected or out < 1:
        raise Violation(f"conv_output_size{tuple(args.values())} = {out!r}, expected {expected}")


def run_set_num_threads(args):
    before = _config._requested_threads
    try:
        fastconv.set_num_threads(args["n"])
        return fastconv.get_num_threads(), fastconv.max_pool2d(np.ones((1, 1, 4, 4)), 2)
    finally:
        fastconv.set_num_threads(before)


def check_set_num_threads(args, result):
    threads, y = result
    n = args["n"]
    if n is not None:
        n = _int(n, "n", 1)
    expected = n if n is not None else _config._threads_from_environment()
    if _config._runtime.openmp_enabled() and threads != expected:
        raise Violation(f"set_num_threads({args['n']!r}) then get_num_threads() = {threads}")
    if not np.array_equal(y, np.ones((1, 1, 2, 2))):
        raise Violation("max_pool2d wrong after set_num_threads")


# =============================================================================================
# Targets: layers, loss, optimiser
# =============================================================================================

LAYER_WORDS = ("in_channels", "out_channels", "in_features", "out_features", "dtype", "layers",
               "x", "dy", "w", "forward", "channels")


@st.composite
def conv2d_layer_arguments(draw):
    groups = draw(st.integers(1, 2))
    valid = dict(in_channels=groups * draw(st.integers(1, 2)),
                 out_channels=groups * draw(st.integers(1, 2)),
                 kernel_size=draw(st.sampled_from([1, 2, 3, (1, 2)])),
                 stride=draw(st.sampled_from([1, 2])),
                 padding=draw(st.sampled_from([0, 1, "same", "valid"])),
                 dilation=draw(st.sampled_from([1, 2])), groups=groups,
                 bias=draw(st.booleans()), dtype=draw(_dtypes()),
                 seed=draw(st.integers(0, 2**32 - 1)))
    if valid["padding"] == "same":
        valid["stride"] = 1
    x = random_array(valid["seed"], (draw(st.integers(1, 2)), valid["in_channels"],
                                     draw(st.integers(3, 6)), draw(st.integers(3, 6))),
                     valid["dtype"])
    valid["x"] = x
    hostile = dict(in_channels=hostile_ints(), out_channels=hostile_ints(),
                   kernel_size=hostile_ints(), stride=hostile_ints(),
                   padding=hostile_ints(), dilation=hostile_ints(), groups=hostile_ints(),
                   dtype=st.sampled_from([np.float16, np.int32, None, "float99", object(), "f4",
                                          complex, "float64"]),
                   seed=st.sampled_from([-1, 2**130, "seed", 1.5]), x=hostile_arrays(x))
    return valid, hostile


def run_conv2d_layer(args):
    layer_args = {k: v for k, v in args.items() if k != "x"}
    layer = Conv2D(**layer_args)
    y = layer.forward(args["x"])
    dx = layer.backward(np.ones_like(y))
    return layer.params["weight"].copy(), layer.params.get("bias"), y, dx


def check_conv2d_layer(args, result):
    weight, bias, y, dx = result
    x = _float_array(args["x"], "x")
    if args["dtype"] is None and weight.dtype != np.float32:
        # dtype=None is PyTorch's "default dtype", float32
        raise Violation(f"Conv2D: dtype=None made {weight.dtype} weights, not float32")
    if weight.dtype != x.dtype.newbyteorder("="):
        raise Violation(f"Conv2D: {weight.dtype} weights computed on {x.dtype} input")
    check_conv2d(dict(args, w=weight, b=bias, algorithm="auto"), y)


def _pool_layer_arguments(draw, kind):
    x = draw(pool_input())
    valid = dict(kernel_size=draw(st.sampled_from([1, 2, (2, 1)])),
                 stride=draw(st.sampled_from([None, 1, 2])), ceil_mode=draw(st.booleans()))
    hostile = dict(kernel_size=hostile_ints(), stride=st.one_of(st.none(), hostile_ints()),
                   ceil_mode=hostile_bools(), x=hostile_arrays(x))
    if kind != "lp":
        valid["padding"] = draw(st.sampled_from([0, 1]))
        hostile["padding"] = hostile_ints()
    if kind == "max":
        valid["dilation"] = draw(st.sampled_from([1, 2]))
        hostile["dilation"] = hostile_ints()
    if kind == "avg":
        valid["count_include_pad"] = draw(st.booleans())
        hostile["count_include_pad"] = hostile_bools()
    if kind == "lp":
        valid["norm_type"] = draw(st.sampled_from([1, 2, 3]))
        hostile["norm_type"] = hostile_reals()
    valid["x"] = x
    return valid, hostile


POOL_LAYERS = {"max": (MaxPool2D, fastconv.max_pool2d, fastconv.max_pool2d_backward),
               "avg": (AvgPool2D, fastconv.avg_pool2d, fastconv.avg_pool2d_backward),
               "lp": (LPPool2D, fastconv.lp_pool2d, fastconv.lp_pool2d_backward)}


def run_pool_layer(kind):
    def run(args):
        cls = POOL_LAYERS[kind][0]
        layer = cls(**{k: v for k, v in args.items() if k != "x"})
        with np.errstate(all="ignore"):
            y = layer.forward(args["x"])
            return y, layer.backward(np.ones_like(y))
    return run


def check_pool_layer(kind):
    def check(args, result):
        y, dx = result
        options = {k: v for k, v in args.items() if k != "x"}
        if kind == "max":
            check_max_pool2d(dict(options, x=args["x"], return_indices=False), y)
        elif kind == "avg":
            check_avg_pool2d(dict(options, x=args["x"], divisor_override=None), y)
        else:
            check_lp_pool2d(dict(options, x=args["x"]), y)
        if dx.shape != np.shape(args["x"]):
            raise Violation(f"{kind} pool layer: dx of shape {dx.shape}")
    return check


@st.composite
def elementwise_layer_arguments(draw):
    x = draw(pool_input())
    return dict(x=x), dict(x=hostile_arrays(x))


def run_relu(args):
    layer = ReLU()
    y = layer.forward(args["x"])
    return y, layer.backward(np.ones_like(y))


def _same(a, b):
    """Equal values (NaN equal to NaN where the dtype has NaN)."""
    return np.array_equal(a, b, equal_nan=np.result_type(a, b).kind in "fc")


def check_relu(args, result):
    y, dx = result
    x = np.asarray(args["x"])
    with np.errstate(invalid="ignore"):
        expected = np.maximum(x, 0)
    if y.dtype != expected.dtype or not _same(y, expected):
        raise Violation(f"ReLU: forward {y.dtype}{y.shape}, expected {expected.dtype}")
    # PyTorch's rule: the gradient stops where y <= 0 and passes elsewhere, NaN included.
    if not np.array_equal(dx, (~(expected <= 0)).astype(dx.dtype)):
        raise Violation("ReLU: wrong backward")


def run_flatten(args):
    layer = Flatten()
    y = layer.forward(args["x"])
    return y, layer.backward(np.ones_like(y))


def check_flatten(args, result):
    y, dx = result
    x = np.asarray(args["x"])
    if x.ndim < 2:
        raise Violation(f"Flatten: accepted x of shape {x.shape}")
    if not _same(y, x.reshape(x.shape[0], int(np.prod(x.shape[1:])))) or dx.shape != x.shape:
        raise Violation("Flatten: wrong result")


@st.composite
def linear_arguments(draw):
    valid = dict(in_features=draw(st.integers(1, 5)), out_features=draw(st.integers(1, 5)),
                 bias=draw(st.booleans()), dtype=draw(_dtypes()),
                 seed=draw(st.integers(0, 2**32 - 1)))
    x = random_array(valid["seed"], (draw(st.integers(0, 3)), valid["in_features"]),
                     valid["dtype"])
    valid["x"] = x
    hostile = dict(in_features=hostile_ints(), out_features=hostile_ints(),
                   dtype=st.sampled_from([np.float16, np.int32, None, "float99", object()]),
                   seed=st.sampled_from([-1, "seed", 1.5]), x=hostile_arrays(x))
    return valid, hostile


def run_linear(args):
    layer = Linear(**{k: v for k, v in args.items() if k != "x"})
    y = layer.forward(args["x"])
    dx = layer.backward(np.ones_like(y))
    return layer.params["weight"].copy(), layer.params.get("bias"), y, dx


def check_linear(args, result):
    weight, bias, y, dx = result
    x = _float_array(args["x"], "x")
    expected = x.astype(np.float64) @ weight.T.astype(np.float64) + (0 if bias is None else bias)
    assert_matches("Linear", y, expected, np.abs(x) @ np.abs(weight.T) + 1e-300, x.dtype)
    assert_matches("Linear dx", dx, np.ones(y.shape) @ weight.astype(np.float64),
                   np.ones(y.shape) @ np.abs(weight), x.dtype)


@st.composite
def sequential_arguments(draw):
    x = random_array(draw(st.integers(0, 2**32 - 1)), (2, 2, 6, 6), np.float32)
    valid = dict(layers=[Conv2D(2, 3, 3, padding=1, seed=0), ReLU(), MaxPool2D(2), Flatten(),
                         Linear(27, 4, seed=0)], x=x)
    hostile = dict(layers=st.sampled_from([[1], [ReLU, ReLU()], [None], ["relu"],
                                           [Conv2D(3, 3, 3, seed=0)], [Linear(5, 2, seed=0)],
                                           [MaxPool2D(8)], [np.ones(3)]]),
                   x=hostile_arrays(x))
    return valid, hostile


def run_sequential(args):
    net = Sequential(*args["layers"])
    y = net.forward(args["x"])
    return y, net.backward(np.ones_like(y))


def check_sequential(args, result):
    y, dx = result
    x = np.asarray(args["x"], np.float64)
    for layer in args["layers"]:
        if isinstance(layer, Conv2D):
            x = conv2d_reference(x, layer.params["weight"], layer.params["bias"],
                                 padding=layer.padding)
        elif isinstance(layer, ReLU):
            x = np.maximum(x, 0)
        elif isinstance(layer, MaxPool2D):
            x = max_pool2d_reference(x, layer.kernel_size)[0]
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
        else:
            x = x @ layer.params["weight"].T.astype(np.float64) + layer.params["bias"]
    assert_matches("Sequential", y, x, np.abs(x) + 30, np.float32)
    if dx.shape != np.shape(args["x"]):
        raise Violation("Sequential: dx of the wrong shape")


@st.composite
def loss_arguments(draw):
    N, classes = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    scores = random_array(seed, (N, classes), draw(_dtypes()))
    labels = np.random.default_rng(seed).integers(0, classes, N)
    hostile = dict(scores=hostile_arrays(scores),
                   labels=st.sampled_from([labels + classes, labels - classes - 1,
                                           labels.astype(float), labels.astype(bool),
                                           labels.astype(np.uint8), labels[:-1], labels.tolist(),
                                           labels.reshape(-1, 1), None, 0, "0",
                                           np.full_like(labels, 2**63 - 1)]))
    return dict(scores=scores, labels=labels), hostile


def check_loss(args, result):
    loss, dscores = result
    scores = _float_array(args["scores"], "scores").astype(np.float64)
    labels = np.asarray(args["labels"])
    if labels.dtype.kind not in "iu" or labels.shape != scores.shape[:1]:
        raise Violation(f"softmax_cross_entropy: accepted labels {labels!r}")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(len(labels)), labels].mean()
    if not (np.isnan(expected) and np.isnan(loss)) and not abs(loss - expected) <= 1e-5 * (
            1 + abs(expected)):
        raise Violation(f"softmax_cross_entropy: loss {loss}, expected {expected}")
    if dscores.shape != scores.shape or \
            dscores.dtype != np.asarray(args["scores"]).dtype.newbyteorder("="):
        raise Violation("softmax_cross_entropy: dscores of the wrong shape or dtype")


@st.composite
def sgd_arguments(draw):
    dtype = draw(_dtypes())
    p = random_array(draw(st.integers(0, 2**32 - 1)), (3, 2), dtype)
    g = random_array(draw(st.integers(0, 2**32 - 1)), (3, 2), dtype)
    valid = dict(params={"w": p}, grads={"w": g}, lr=draw(st.sampled_from([0.1, 1, 0.5, 0])),
                 momentum=draw(st.sampled_from([0.0, 0.9])),
                 weight_decay=draw(st.sampled_from([0.0, 0.01])))
    real = st.sampled_from([0, -1, float("nan"), float("inf"), None, "0.1", True, 1j,
                            np.float32(0.1), np.int64(1), np.array(0.1), [0.1]])
    hostile = dict(params=st.sampled_from([{"w": p.astype(np.int64)}, {"w": 1.0}, {"v": p},
                                           {"w": p[:2]}, {"w": None}, {}, [p], None]),
                   grads=st.sampled_from([{"w": g.astype(complex)}, {"w": g[:1]}, {"w": 1.0},
                                          {"w": "g"}, {"v": g}, {}, None]),
                   lr=real, momentum=real, weight_decay=real)
    return valid, hostile


def run_sgd(args):
    # The optimiser updates params in place by design: run it on copies and return them.
    params = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
              for k, v in args["params"].items()} if isinstance(args["params"], dict) \
        else args["params"]
    opt = SGD(params, args["grads"], args["lr"], args["momentum"], args["weight_decay"])
    opt.step()
    opt.step()
    return params


def check_sgd(args, params):
    lr, momentum, decay = (float(args[k]) for k in ("lr", "momentum", "weight_decay"))
    if not (lr >= 0 and momentum >= 0 and decay >= 0):
        raise Violation(f"SGD: accepted lr={args['lr']!r}, momentum={args['momentum']!r}, "
                        f"weight_decay={args['weight_decay']!r}")
    for key, p0 in args["params"].items():
        p, g = np.array(p0, np.float64), np.asarray(args["grads"][key])
        if np.asarray(p0).dtype.kind != "f" or np.shape(g) != np.shape(p0) or \
                np.asarray(args["grads"][key]).dtype.kind not in "fiu":
            raise Violation(f"SGD: accepted params[{key!r}] {p0!r} with grads {g!r}")
        g = g.astype(np.float64)
        v = None
        for _ in range(2):
            d = g + decay * p if decay else g
            v = d if v is None or not momentum else momentum * v + d
            p = p - lr * v
        assert_matches("SGD", params[key], p, np.abs(p) + 10, np.asarray(p0).dtype)


TARGETS = [
    Target("conv2d", lambda a: fastconv.conv2d(**a), conv2d_arguments(), check_conv2d,
           examples=200),
    Target("conv2d_backward", lambda a: fastconv.conv2d_backward(**a),
           conv2d_backward_arguments(), check_conv2d_backward, examples=150),
    Target("conv_transpose2d", lambda a: fastconv.conv_transpose2d(**a),
           conv_transpose2d_arguments(), check_conv_transpose2d, examples=150),
    Target("max_pool2d", lambda a: fastconv.max_pool2d(**a), max_pool2d_arguments(),
           check_max_pool2d, examples=200),
    Target("max_pool2d_backward", lambda a: fastconv.max_pool2d_backward(**a),
           max_pool2d_backward_arguments(), check_max_pool2d_backward, examples=150),
    Target("avg_pool2d", lambda a: fastconv.avg_pool2d(**a), avg_pool2d_arguments(),
           check_avg_pool2d, examples=150),
    Target("avg_pool2d_backward", lambda a: fastconv.avg_pool2d_backward(**a),
           avg_pool2d_backward_arguments(), check_avg_pool2d_backward, examples=150),
    Target("lp_pool2d", lambda a: fastconv.lp_pool2d(**a), lp_pool2d_arguments(),
           check_lp_pool2d),
    Target("lp_pool2d_backward", lambda a: fastconv.lp_pool2d_backward(**a),
           lp_pool2d_backward_arguments(), check_lp_pool2d_backward),
    Target("conv_output_size", lambda a: fastconv.conv_output_size(**a),
           conv_output_size_arguments(), check_conv_output_size, examples=150),
    Target("set_num_threads", run_set_num_threads,
           st.just((dict(n=2), dict(n=st.one_of(hostile_ints(), st.none())))),
           check_set_num_threads, examples=50),
    Target("Conv2D", run_conv2d_layer, conv2d_layer_arguments(), check_conv2d_layer,
           prefixes=("Conv2D", "Conv2D.forward", "Conv2D.backward", "conv2d", "conv2d_backward"),
           words=LAYER_WORDS, examples=150),
    Target("MaxPool2D", run_pool_layer("max"), st.composite(
        lambda draw: _pool_layer_arguments(draw, "max"))(), check_pool_layer("max"),
           prefixes=("MaxPool2D", "max_pool2d", "max_pool2d_backward"), words=LAYER_WORDS),
    Target("AvgPool2D", run_pool_layer("avg"), st.composite(
        lambda draw: _pool_layer_arguments(draw, "avg"))(), check_pool_layer("avg"),
           prefixes=("AvgPool2D", "avg_pool2d", "avg_pool2d_backward"), words=LAYER_WORDS),
    Target("LPPool2D", run_pool_layer("lp"), st.composite(
        lambda draw: _pool_layer_arguments(draw, "lp"))(), check_pool_layer("lp"),
           prefixes=("LPPool2D", "lp_pool2d", "lp_pool2d_backward"), words=LAYER_WORDS),
    Target("ReLU", run_relu, elementwise_layer_arguments(), check_relu,
           prefixes=("ReLU", "ReLU.forward", "ReLU.backward"), words=LAYER_WORDS, examples=75),
    Target("Flatten", run_flatten, elementwise_layer_arguments(), check_flatten,
           prefixes=("Flatten", "Flatten.forward", "Flatten.backward"), words=LAYER_WORDS,
           examples=75),
    Target("Linear", run_linear, linear_arguments(), check_linear,
           prefixes=("Linear", "Linear.forward", "Linear.backward"), words=LAYER_WORDS),
    Target("Sequential", run_sequential, sequential_arguments(), check_sequential,
           prefixes=("Sequential", "conv2d", "Conv2D.forward", "max_pool2d", "Linear.forward",
                     "ReLU.forward", "Flatten.forward"), words=LAYER_WORDS, examples=75),
    Target("softmax_cross_entropy", lambda a: softmax_cross_entropy(**a), loss_arguments(),
           check_loss, examples=75),
    Target("SGD", run_sgd, sgd_arguments(), check_sgd, examples=75),
]


def _short(value):
    """repr with arrays shown as array<dtype>(shape)."""
    if isinstance(value, np.ndarray) and value.size > 4:
        return f"array<{value.dtype}>{value.shape}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(repr(value)) > 80:
        return f"{type(value).__name__} of {len(value)}: " + repr(value)[:60] + "..."
    return repr(value)


@pytest.fixture
def small_memory_limit(monkeypatch):
    """No result above 1 GiB during the fuzz, so a combination of hostile values the strategies
    did not foresee is refused instead of allocating and computing gigabytes."""
    monkeypatch.setattr(_geometry, "_memory_limit_bytes", lambda: 2**30)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_hostile_input_is_refused_by_name_or_computed_right(target, small_memory_limit):
    isa_before, threads_before = _config.get_isa(), _config._requested_threads

    @settings(max_examples=target.examples * EXAMPLES_SCALE, deadline=None)
    @given(data=st.data())
    def fuzz(data):
        args = data.draw(calls(target.arguments), label="arguments")
        _config.set_isa(data.draw(st.sampled_from(ISAS), label="isa"))
        try:
            with np.errstate(all="ignore"):
                outcome = run_target(target, args)
        except Violation as violation:
            if not CENSUS:
                raise
            kind = re.sub(r"0x[0-9a-f]+|\d+", "#", str(violation))[:160]
            shortest = CENSUS_FAILURES[target.name].get(kind)
            example = f"{violation}\n      args: {_short(args)}"[:1000]
            if shortest is None or len(example) < len(shortest):
                CENSUS_FAILURES[target.name][kind] = example
            outcome = "violated"
        finally:
            _config.set_isa(isa_before)
            _config._requested_threads = threads_before
        FUZZ_EXAMPLES[target.name, outcome] += 1

    fuzz()


@pytest.fixture(scope="module", autouse=True)
def report_fuzz_counts(request):
    """After the module: how many fuzz examples each target ran (and, in census mode, every kind
    of failure with its shortest example)."""
    yield
    if not FUZZ_EXAMPLES:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "fuzz examples (refused / computed / violated):"]
    for target in TARGETS:
        counts = [FUZZ_EXAMPLES[target.name, o] for o in ("refused", "computed", "violated")]
        if any(counts):
            lines.append(f"  {target.name:24s} {counts[0]:5d} {counts[1]:5d} {counts[2]:5d}")
    total = sum(FUZZ_EXAMPLES.values())
    lines.append(f"  {'total':24s} {total:5d}")
    for name, kinds in CENSUS_FAILURES.items():
        lines.append(f"census: {name}: {len(kinds)} kinds of failure")
        lines.extend("    " + example.replace("\n", "\n    ") for example in kinds.values())
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("\n".join(lines))


# =============================================================================================
# The worst cases again, in a child process: a crash or hang fails this test, not pytest
# =============================================================================================

# Each case is an expression over np, fastconv, f32 (np.float32), one (a float32 1x1 image of
# 3.0) and the helpers below; the child evaluates every case on every ISA path and swallows
# exceptions (the fuzz above checks which ones): it only has to survive.
SMOKE_SETUP = """
import faulthandler, sys
import numpy as np
import fastconv
from fastconv import _config
faulthandler.enable()
f32 = np.float32
one = np.full((1, 1, 1, 1), 3.0, f32)
rng = np.random.default_rng(0)
def unaligned(shape, dtype=f32, fill=1.0):
    buffer = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize + 16, np.uint8)
    a = np.frombuffer(buffer, dtype, count=int(np.prod(shape)), offset=3).reshape(shape)
    a[...] = fill
    return a
def strided(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]
def zero_stride(shape, dtype=f32):
    return np.lib.stride_tricks.as_strided(np.ones(1, dtype), shape, (0,) * len(shape))
x = rng.standard_normal((2, 3, 9, 8)).astype(f32)
w = rng.standard_normal((16, 3, 3, 3)).astype(f32)
y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
"""

SMOKE_CASES = [
    # caller's max-pool indices: out of range in a later plane only, at the int64 limits,
    # as uint64 past int64, unaligned, strided, byte-swapped, narrow
    "fastconv.max_pool2d_backward(y, np.where(np.arange(idx.size).reshape(idx.shape) == "
    "idx.size - 1, 72, idx), x.shape)",
    "fastconv.max_pool2d_backward(y, idx - 1, x.shape)",
    "fastconv.max_pool2d_backward(y, np.full_like(idx, 2**63 - 1), x.shape)",
    "fastconv.max_pool2d_backward(y, np.full_like(idx, -2**63), x.shape)",
    "fastconv.max_pool2d_backward(y, idx.astype(np.uint64) + np.uint64(2**63), x.shape)",
    "fastconv.max_pool2d_backward(y, np.full(idx.shape, 2**64 - 1, np.uint64), x.shape)",
    "fastconv.max_pool2d_backward(y, unaligned(idx.shape, np.int64, 71), x.shape)",
    "fastconv.max_pool2d_backward(y, strided(idx), x.shape)",
    "fastconv.max_pool2d_backward(y, idx.astype('>i8'), x.shape)",
    "fastconv.max_pool2d_backward(y, idx.astype(np.int8), x.shape)",
    "fastconv.max_pool2d_backward(y, idx, (2, 3, 9, 0))",
    "fastconv.max_pool2d_backward(y, idx, (2, 3, 0, 0))",
    "fastconv.max_pool2d_backward(y, idx + 10**6, (2, 3, 9, 0))",
    "fastconv.max_pool2d_backward(y[:, :, :0], idx[:, :, :0], x.shape)",
    "fastconv.max_pool2d_backward(y[0], idx[0] + 72, x.shape[1:])",
    # parameters at the int32 boundary and beyond, with small results
    "fastconv.conv2d(one, np.ones((1, 1, 1, 2), f32), stride=(1, 2**32), padding=(0, 2**31), "
    "dilation=(1, 2**31))",
    "fastconv.conv2d(one, np.ones((8, 1, 2, 2), f32), stride=2**40, padding=2**38, "
    "dilation=2**39, algorithm='im2col')",
    "fastconv.conv2d(one, np.ones((2, 1, 2, 2), f32), stride=2**40, padding=2**38, "
    "dilation=2**39, algorithm='direct')",
    "fastconv.conv2d_backward(np.ones((1, 8, 1, 1), f32), one, np.ones((8, 1, 2, 2), f32), "
    "stride=2**40, padding=2**38, dilation=2**39)",
    "fastconv.conv_transpose2d(np.ones((1, 1, 2, 1), f32), np.ones((1, 1, 1, 1), f32), "
    "stride=(2**31, 1), padding=(2**31 - 1, 0), output_padding=(2**31 - 1, 0))",
    "fastconv.conv_transpose2d(one, np.ones((1, 1, 2, 2), f32), dilation=2**39, padding=2**38)",
    "fastconv.avg_pool2d(one, 2**32, padding=2**31)",
    "fastconv.avg_pool2d(one, 2**40, padding=2**39, count_include_pad=False)",
    "fastconv.avg_pool2d_backward(one, (1, 1, 1, 1), 2**40, padding=2**39)",
    "fastconv.avg_pool2d(one, 1, divisor_override=2**40)",
    "fastconv.max_pool2d(one, (1, 2**20), padding=(0, 2**19), return_indices=True)",
    "fastconv.max_pool2d(x, 2, stride=2**40, return_indices=True)",
    "fastconv.lp_pool2d(one, 2, 1, stride=2**40)",
    "fastconv.lp_pool2d(x, 10**400, 2)",
    # refused sizes
    "fastconv.conv2d(one, np.ones((1, 1, 1, 1), f32), padding=2**40)",
    "fastconv.conv_transpose2d(np.ones((1, 1, 2, 2), f32), np.ones((1, 1, 1, 1), f32), "
    "stride=2**40)",
    "fastconv.max_pool2d(zero_stride((2**20, 2**20, 64, 64)), 1)",
    "fastconv.conv2d(zero_stride((2**20, 64, 32, 32)), np.ones((4096, 64, 1, 1), f32))",
    # zero-size axes everywhere
    "fastconv.conv2d(np.ones((0, 3, 5, 5), f32), w[:, :, :1, :1])",
    "fastconv.conv2d(np.ones((1, 0, 5, 5), f32), np.ones((4, 0, 3, 3), f32), padding=1)",
    "fastconv.conv2d(np.ones((1, 3, 0, 5), f32), w, padding=2)",
    "fastconv.conv2d(np.ones((1, 3, 5, 5), f32), w[:0])",
    "fastconv.conv2d_backward(np.ones((1, 16, 2, 7), f32), np.ones((1, 3, 0, 5), f32), w, "
    "padding=2)",
    "fastconv.conv_transpose2d(np.ones((1, 3, 0, 4), f32), np.ones((3, 2, 3, 3), f32))",
    "fastconv.max_pool2d(np.ones((1, 3, 0, 5), f32), 2, padding=1, return_indices=True)",
    "fastconv.avg_pool2d(np.ones((1, 3, 0, 5), f32), 2, padding=1, count_include_pad=False)",
    "fastconv.avg_pool2d_backward(np.ones((1, 3, 1, 3), f32), (1, 3, 0, 5), 2, padding=1)",
    "fastconv.lp_pool2d_backward(np.ones((0, 3, 2, 2), f32), np.ones((0, 3, 4, 4), f32), 2, 2)",
    # odd layouts: unaligned, zero strides, negative strides, Fortran order, read-only
    "fastconv.conv2d(unaligned((2, 16, 9, 9)), unaligned((32, 16, 3, 3)), algorithm='im2col')",
    "fastconv.conv2d(unaligned((2, 16, 9, 9)), unaligned((2, 16, 3, 3)), algorithm='direct')",
    "fastconv.conv2d_backward(unaligned((2, 32, 7, 7)), unaligned((2, 16, 9, 9)), "
    "unaligned((32, 16, 3, 3)))",
    "fastconv.conv_transpose2d(unaligned((2, 16, 7, 7), np.float64), "
    "unaligned((16, 4, 3, 3), np.float64), stride=2)",
    "fastconv.max_pool2d(unaligned((2, 16, 33, 65)), 3, stride=2, return_indices=True)",
    "fastconv.avg_pool2d(unaligned((2, 16, 33, 65), np.float64), 3, padding=1)",
    "fastconv.lp_pool2d(unaligned((2, 16, 33, 65)), 2, 3)",
    "fastconv.conv2d(zero_stride((2, 3, 64, 64)), w)",
    "fastconv.conv2d(x[:, ::-1, ::-1, ::-2], w)",
    "fastconv.conv2d(np.asfortranarray(x), np.asfortranarray(w))",
    "fastconv.max_pool2d(zero_stride((2, 3, 64, 64)), 3, return_indices=True)",
    # NaN and Inf
    "fastconv.conv2d(np.where(x > 1, np.nan, x).astype(f32), w)",
    "fastconv.conv2d(np.where(x > 1, np.inf, x).astype(f32), w, algorithm='direct')",
    "fastconv.max_pool2d(np.where(x > 0, np.nan, x).astype(f32), 3, 1, 1, return_indices=True)",
    "fastconv.avg_pool2d(np.full((1, 1, 4, 4), np.inf, f32), 2)",
    # more threads than sensible
    "(fastconv.set_num_threads(2**40), fastconv.conv2d(x, w), fastconv.set_num_threads(None))",
    "(fastconv.set_num_threads(64), fastconv.max_pool2d(np.ones((4, 64, 128, 128), f32), 2), "
    "fastconv.set_num_threads(None))",
]

SMOKE_LOOP = """
for isa in _config.available_isas():
    _config.set_isa(isa)
    for i, case in enumerate(CASES):
        print(f"{isa} {i}: {case}", flush=True)
        try:
            eval(case)
        except Exception:
            pass
print("all cases survived", flush=True)
"""


def run_python(code, timeout, env=None):
    """Run code in a fresh interpreter (this checkout's fastconv first on the path)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def test_worst_cases_never_crash_the_interpreter():
    code = SMOKE_SETUP + f"CASES = {SMOKE_CASES!r}\n" + SMOKE_LOOP
    try:
        child = run_python(code, timeout=240)
    except subprocess.TimeoutExpired as expired:
        last = (expired.stdout or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.fail(f"the child hung (240 s) in: {last}")
    last = child.stdout.strip().splitlines()[-1:] or ["(nothing)"]
    assert child.returncode == 0 and last == ["all cases survived"], (
        f"the child died (exit status {child.returncode}) in case {last[0]!r}\n"
        f"{child.stderr[-3000:]}")
