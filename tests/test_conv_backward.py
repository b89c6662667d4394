"""conv2d_backward and conv_transpose2d against the float64 oracles (tests/reference.py): every
dtype x ISA path x named case, finite differences and the adjoint identity in float64,
thread-count independence, unbatched inputs, empty batches, untouched inputs and every
validation error of these two functions."""
import functools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastconv
from fastconv import _config, _conv, _geometry, conv2d, conv2d_backward, conv_transpose2d

from conftest import assert_close, dirty_the_heap, raises, reference_and_scale
from reference import (
    conv2d_backward_reference, conv2d_reference, conv_transpose2d_reference, same_padding,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]


@dataclass(frozen=True)
class Case:
    """The conv2d whose gradients are taken: x (N, C, H, W), w (K, C/groups, FH, FW)."""
    N: int
    C: int
    H: int
    W: int
    K: int
    FH: int
    FW: int
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1

    def reference_padding(self):
        """The padding in the oracle's ((top, bottom), (left, right)) form."""
        if self.padding == "same":
            return same_padding((self.FH, self.FW), self.dilation)
        if self.padding == "valid":
            return 0
        return self.padding

    def reference_kwargs(self):
        return dict(stride=self.stride, padding=self.reference_padding(),
                    dilation=self.dilation, groups=self.groups)

    def conv_kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def output_shape(self):
        (top, bottom), (left, right) = _pairs_of_padding(self.reference_padding())
        (SH, SW), (DH, DW) = _pair(self.stride), _pair(self.dilation)
        HO = (self.H + top + bottom - DH * (self.FH - 1) - 1) // SH + 1
        WO = (self.W + left + right - DW * (self.FW - 1) - 1) // SW + 1
        return (self.N, self.K, HO, WO)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pairs_of_padding(padding):
    ph, pw = _pair(padding)
    return tuple(p if isinstance(p, (tuple, list)) else (p, p) for p in (ph, pw))


NAMED_CASES = {
    "3x3_pad1": Case(2, 3, 8, 8, 4, 3, 3, padding=1),
    "nonsquare_kernel_2x5_image_9x11": Case(2, 3, 9, 11, 5, 2, 5),
    "nonsquare_kernel_5x1_padding_2x0": Case(1, 4, 10, 6, 3, 5, 1, padding=(2, 0)),
    "stride_2_with_remainder": Case(2, 3, 10, 12, 4, 3, 3, stride=2),
    "stride_3x2_with_remainder_padding_1": Case(1, 2, 13, 12, 5, 3, 4, stride=(3, 2), padding=1),
    "stride_3_larger_than_kernel_2": Case(1, 3, 11, 11, 4, 2, 2, stride=3),
    "padding_2": Case(2, 3, 6, 7, 4, 3, 3, padding=2),
    "padding_pair_1x3": Case(1, 3, 6, 5, 4, 3, 3, padding=(1, 3)),
    "padding_valid": Case(2, 3, 7, 9, 4, 3, 2, padding="valid"),
    "same_odd_kernel_3x5": Case(2, 3, 7, 9, 4, 3, 5, padding="same"),
    "same_even_kernel_4x2": Case(1, 3, 7, 8, 5, 4, 2, padding="same"),
    "same_even_kernel_2x2": Case(2, 2, 5, 5, 3, 2, 2, padding="same"),
    "same_dilated_even_kernel_2x4_d3x1": Case(1, 2, 8, 9, 3, 2, 4, padding="same",
                                              dilation=(3, 1)),
    "dilation_2": Case(2, 3, 11, 10, 4, 3, 3, dilation=2),
    "dilation_2x3_padding_1x2": Case(1, 2, 9, 12, 3, 3, 2, dilation=(2, 3), padding=(1, 2)),
    "dilation_stride_padding": Case(1, 3, 15, 14, 5, 3, 3, stride=2, dilation=2, padding=1),
    "groups_2": Case(2, 4, 7, 8, 6, 3, 3, groups=2, padding=1),
    "groups_2_stride_dilation": Case(1, 6, 11, 9, 4, 3, 2, groups=2, stride=2, dilation=(1, 2)),
    "depthwise_C6": Case(2, 6, 8, 7, 6, 3, 3, groups=6, padding=1),
    "depthwise_multiplier_2_same": Case(1, 5, 9, 8, 10, 3, 3, groups=5, padding="same"),
    "pointwise_1x1": Case(2, 8, 5, 6, 7, 1, 1),
    "pointwise_1x1_stride_2": Case(1, 4, 7, 8, 5, 1, 1, stride=2),
    "batch_N1": Case(1, 3, 6, 6, 4, 3, 3, padding=1),
    "channels_C1": Case(3, 1, 8, 9, 5, 3, 3),
    "filters_K1": Case(2, 4, 6, 6, 1, 3, 3),
    "filters_K17": Case(2, 5, 7, 6, 17, 3, 3, padding=1),
    "big_reduction_C222_3x3_is_1998": Case(1, 222, 5, 5, 5, 3, 3, padding=1),
    "alexnet_conv1_11x11_stride4_pad2_on_38x38": Case(1, 3, 38, 38, 8, 11, 11, stride=4,
                                                      padding=2),
    "kernel_equals_padded_input": Case(2, 3, 5, 4, 4, 7, 6, padding=1),
    "windows_entirely_in_padding": Case(1, 2, 2, 2, 3, 1, 1, padding=3),
    "many_output_tiles": Case(2, 8, 20, 23, 19, 3, 3, padding=1),
    # Strided rows of 20 outputs: the column matrix copies every s-th input and col2im adds dx
    # back to every s-th input (both SIMD for s <= 8 with AVX-512; 20 = a 16-wide run + a tail).
    **{f"stride_{s}_rows_of_20_outputs": Case(1, 8, 12, 20 * s + 2, 6, 3, 3, stride=s, padding=1)
       for s in (2, 3, 4, 5, 6, 7, 8, 9)},
    "stride_6_rows_of_5_outputs": Case(1, 4, 9, 29, 5, 3, 3, stride=6, padding=1),
    # dx's GEMM keeps a task's columns within DX_COLUMNS_BYTES: one channel of a 16x16 kernel
    # per task (256 rows), and a 25x25 kernel's 625 rows split into chunks within one channel.
    "kernel_16x16_dx_one_channel_per_task": Case(1, 4, 31, 31, 3, 16, 16),
    "kernel_25x25_dx_rows_in_chunks": Case(1, 3, 40, 40, 6, 25, 25),
}


def make_inputs(case, dtype, seed=0):
    """Deterministic (dy, x, w) of a case, values in [-1, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (case.N, case.C, case.H, case.W)).astype(dtype)
    w = rng.uniform(-1, 1, (case.K, case.C // case.groups, case.FH, case.FW)).astype(dtype)
    dy = rng.uniform(-1, 1, case.output_shape()).astype(dtype)
    return dy, x, w


@functools.lru_cache(maxsize=None)
def case_inputs(name, dtype):
    arrays = make_inputs(NAMED_CASES[name], dtype)
    for array in arrays:
        array.setflags(write=False)  # shared by many tests: nobody may change them
    return arrays


@functools.lru_cache(maxsize=None)
def case_reference(name, dtype):
    """((dx, dw, db), their per-element sums of |terms|) of a named case, once per dtype."""
    dy, x, w = case_inputs(name, dtype)
    kwargs = NAMED_CASES[name].reference_kwargs()
    ref = conv2d_backward_reference(dy, x, w, **kwargs)
    scale = conv2d_backward_reference(np.abs(dy), np.abs(x), np.abs(w), **kwargs)
    return ref, scale


def assert_gradients_close(grads, name, dtype, batch=None):
    """(dx, dw, db) match the oracle of a named case within RTOL * sum|terms| (dx of image
    `batch` only, when given)."""
    (dx_ref, dw_ref, db_ref), (dx_scale, dw_scale, db_scale) = case_reference(name, dtype)
    if batch is not None:
        dx_ref, dx_scale = dx_ref[batch], dx_scale[batch]
    for label, got, ref, scale in (("dx", grads[0], dx_ref, dx_scale),
                                   ("dw", grads[1], dw_ref, dw_scale),
                                   ("db", grads[2], db_ref, db_scale)):
        try:
            assert_close(got, ref, scale, dtype)
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}") from None


# ---------------------------------------------------------------------------------------------
# 1x1 convolutions at unit stride without padding run on planes cut into other rows
# (fastconv.conv._pointwise_cut): H*W with and without a divisor that is a multiple of 16
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 6, 7, 9), (2, 6, 12, 20), (1, 4, 1, 37), (3, 8, 14, 14),
                                   (1, 2, 40, 16), (2, 12, 8, 8)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_pointwise_convolutions_and_gradients_match_the_oracle(isa, shape, groups, dtype):
    rng = np.random.default_rng(sum(shape) + groups)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((10, shape[1] // groups, 1, 1)).astype(dtype)
    b = rng.standard_normal(10).astype(dtype)
    ref, scale = reference_and_scale(x, w, b, groups=groups)
    for algorithm in ("direct", "im2col"):
        assert_close(conv2d(x, w, b, groups=groups, algorithm=algorithm), ref, scale, dtype)
    dy = rng.standard_normal(ref.shape).astype(dtype)
    grads = conv2d_backward(dy, x, w, groups=groups)
    refs = conv2d_backward_reference(dy, x, w, groups=groups)
    scales = conv2d_backward_reference(np.abs(dy), np.abs(x), np.abs(w), groups=groups)
    for got, expected, expected_scale in zip(grads, refs, scales):
        assert_close(got, expected, expected_scale, dtype)


# ---------------------------------------------------------------------------------------------
# The oracle itself
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stride_3x2_with_remainder_padding_1", "same_even_kernel_4x2",
                                  "groups_2_stride_dilation", "depthwise_multiplier_2_same"])
def test_reference_gradients_are_adjoint_of_reference_forward(name):
    case = NAMED_CASES[name]
    dy, x, w = case_inputs(name, np.float64)
    dx, dw, db = case_reference(name, np.float64)[0]
    y = conv2d_reference(x, w, **case.reference_kwargs())
    forward = np.vdot(y, dy)
    magnitude = np.vdot(conv2d_reference(np.abs(x), np.abs(w), **case.reference_kwargs()),
                        np.abs(dy))
    assert abs(forward - np.vdot(x, dx)) <= 1e-12 * magnitude
    assert abs(forward - np.vdot(w, dw)) <= 1e-12 * magnitude
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-14)


def test_reference_on_a_hand_computed_example():
    # One 3x3 image, 2x2 kernel [[1, 2], [3, 4]], dy = 1 everywhere (2x2): dx[h, w] sums the
    # kernel taps that read (h, w); dw[fh, fw] sums the 2x2 block of x starting at (fh, fw).
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx, dw, db = conv2d_backward_reference(np.ones((1, 1, 2, 2)), x, w)
    np.testing.assert_array_equal(dx[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(dw[0, 0], [[8, 12], [20, 24]])
    np.testing.assert_array_equal(db, [4.0])


# ---------------------------------------------------------------------------------------------
# Named cases against the oracle
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(NAMED_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradients_match_oracle_on_named_cases(isa, dtype, name):
    dy, x, w = case_inputs(name, dtype)
    dirty_the_heap(x.nbytes)  # an unwritten element of dx would most likely be NaN
    grads = conv2d_backward(dy, x, w, **NAMED_CASES[name].conv_kwargs())
    assert_gradients_close(grads, name, dtype)


# Input rows and columns no window reads, per case: their gradient must be exactly 0.
UNREAD = {
    "stride_2_with_remainder": ({9}, {11}),
    "stride_3_larger_than_kernel_2": ({2, 5, 8}, {2, 5, 8}),
    "pointwise_1x1_stride_2": ({1, 3, 5}, {1, 3, 5, 7}),
    "alexnet_conv1_11x11_stride4_pad2_on_38x38": ({37}, {37}),
}


@pytest.mark.parametrize("name", list(UNREAD))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_input_positions_no_window_reads_get_exactly_zero_gradient(isa, dtype, name):
    case = NAMED_CASES[name]
    rows, cols = UNREAD[name]
    # The claim about the case itself: exactly these rows/columns are read by no window.
    coverage = conv2d_backward_reference(
        np.ones(case.output_shape()), np.zeros((case.N, case.C, case.H, case.W)),
        np.ones((case.K, case.C // case.groups, case.FH, case.FW)), **case.reference_kwargs())[0]
    unread = np.zeros((case.H, case.W), bool)
    unread[sorted(rows), :] = True
    unread[:, sorted(cols)] = True
    np.testing.assert_array_equal(coverage[0, 0] == 0, unread)

    dy, x, w = case_inputs(name, dtype)
    dirty_the_heap(x.nbytes)
    dx = conv2d_backward(dy, x, w, **case.conv_kwargs())[0]
    assert np.all(dx[:, :, unread] == 0), f"dx at unread positions: {dx[:, :, unread]}"
    assert np.all(dx[:, :, ~unread] != 0)


# ---------------------------------------------------------------------------------------------
# Finite differences and the adjoint identity (float64)
# ---------------------------------------------------------------------------------------------

FD_CASES = ["3x3_pad1", "stride_3x2_with_remainder_padding_1", "same_even_kernel_4x2",
            "dilation_stride_padding", "groups_2", "depthwise_multiplier_2_same",
            "pointwise_1x1_stride_2", "alexnet_conv1_11x11_stride4_pad2_on_38x38"]
FD_STEP = 1e-3
FD_SAMPLES = 6


@pytest.mark.parametrize("name", FD_CASES)
def test_gradients_match_central_finite_differences(name):
    """Sampled entries of dx, dw, db against central differences of the scalar loss
    L = sum(conv2d(x, w, b) * dy): relative error, measured against the entry's sum of |terms|,
    below 1e-7. (y(+h) - y(-h)) is formed before the sum, so the few outputs the step touches
    carry the whole difference."""
    case = NAMED_CASES[name]
    dy, x, w = (a.copy() for a in case_inputs(name, np.float64))
    b = np.random.default_rng(1).uniform(-1, 1, case.K)
    dx, dw, db = conv2d_backward(dy, x, w, **case.conv_kwargs())
    dx_scale, dw_scale, db_scale = case_reference(name, np.float64)[1]
    rng = np.random.default_rng(2)

    def loss_difference(xp, wp, bp, xm, wm, bm):
        yp = conv2d(xp, wp, bp, **case.conv_kwargs())
        ym = conv2d(xm, wm, bm, **case.conv_kwargs())
        return np.sum((yp - ym) * dy) / (2 * FD_STEP)

    for label, array, grad, scale in (("dx", x, dx, dx_scale), ("dw", w, dw, dw_scale),
                                      ("db", b, db, db_scale)):
        for flat in rng.choice(array.size, min(FD_SAMPLES, array.size), replace=False):
            where = np.unravel_index(flat, array.shape)
            plus, minus = array.copy(), array.copy()
            plus[where] += FD_STEP
            minus[where] -= FD_STEP
            args = {"dx": (plus, w, b, minus, w, b), "dw": (x, plus, b, x, minus, b),
                    "db": (x, w, plus, x, w, minus)}[label]
            numeric = loss_difference(*args)
            error = abs(numeric - grad[where]) / max(scale[where], 1e-300)
            assert error < 1e-7, (f"{label}{tuple(int(i) for i in where)}: analytic "
                                  f"{grad[where]!r}, finite difference {numeric!r}")


@pytest.mark.parametrize("name", list(NAMED_CASES))
def test_dx_and_dw_are_adjoint_of_forward(name):
    # <conv2d(x, w), dy> == <x, dx> == <w, dw>, up to float64 rounding of sums of |terms|.
    case = NAMED_CASES[name]
    dy, x, w = case_inputs(name, np.float64)
    dx, dw, db = conv2d_backward(dy, x, w, **case.conv_kwargs())
    y = conv2d(x, w, **case.conv_kwargs())
    magnitude = np.vdot(conv2d_reference(np.abs(x), np.abs(w), **case.reference_kwargs()),
                        np.abs(dy))
    forward = np.vdot(y, dy)
    assert abs(forward - np.vdot(x, dx)) <= 1e-12 * magnitude, (forward, np.vdot(x, dx))
    assert abs(forward - np.vdot(w, dw)) <= 1e-12 * magnitude, (forward, np.vdot(w, dw))
    # db is the adjoint of adding a bias: <b broadcast, dy> == <b, db>.
    b = np.linspace(-1, 1, case.K)
    assert abs(np.vdot(b[None, :, None, None] * np.ones_like(dy), dy) - np.vdot(b, db)) <= \
        1e-12 * np.abs(dy).sum()


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

THREAD_CASES = {
    "N3_C20_17x19_K37_pad1": Case(3, 20, 17, 19, 37, 3, 3, padding=1),
    "N1_C64_9x9_K40_many_channels": Case(1, 64, 9, 9, 40, 3, 3, padding=1),
    "N37_C3_3x3_K12_small_R_batch_parts": Case(37, 3, 10, 10, 12, 3, 3, padding=1),
    "depthwise_N3_C20_17x19": Case(3, 20, 17, 19, 20, 3, 3, padding=1, groups=20),
    "N2_C16_21x21_K24_5x5_stride2": Case(2, 16, 21, 21, 24, 5, 5, stride=2, padding=2),
    "N1_C8_40x15_K16_1x1_one_image_split_by_pixels": Case(1, 8, 40, 15, 16, 1, 1),
    "N1_C64_40x40_K16_one_image_split_by_rows": Case(1, 64, 40, 40, 16, 3, 3, padding=1),
}


@pytest.mark.parametrize("groups, KG, CG, FH, FW, dilation", [
    (1, 40, 36, 3, 3, 1), (2, 16, 20, 3, 2, 2), (3, 7, 9, 1, 1, 1), (4, 12, 2, 3, 3, 1),
    (12, 1, 1, 3, 3, 3)])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_direct_dx_reads_the_filters_rotated_as_rotate_filters_gives_them(
        isa, groups, KG, CG, FH, FW, dilation, dtype):
    """conv2d_direct(rotated=True) packs w turned and transposed per group as it reads it; the
    result equals conv2d_direct on rotate_filters' copy, bit for bit (groups, depthwise and the
    row kernel's at most 4 filters per group, dilation, 1x1)."""
    rng = np.random.default_rng(KG + CG)
    w = rng.uniform(-1, 1, (groups * KG, CG, FH, FW)).astype(dtype)
    dy = rng.uniform(-1, 1, (2, groups * KG, 9, 11)).astype(dtype)
    PH, PW = dilation * (FH - 1), dilation * (FW - 1)
    # The full convolution: padding d*(F-1) on each side makes dx d*(F-1) larger than dy.
    shape = (2, groups * CG, 9 + PH, 11 + PW)
    arguments = (np.zeros(1, dtype), False)
    threads_isa = (groups, 1, 1, PH, PW, dilation, dilation, _config.isa_code(), 2)
    results = []
    for weights, rotated in ((w, True), (_conv.rotate_filters(w, groups, 2), False)):
        dx = np.full(shape, np.nan, dtype)
        _conv.conv2d_direct(dy, weights, *arguments, dx, *threads_isa, rotated=rotated)
        results.append(dx)
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.isnan(results[0]).any()


# dx's columns with at most GEMM_FEW_PIXELS output pixels per image: N, C, H, W, K, F, stride,
# padding, groups. Several blocks of 256 filters (a partial last one), tap counts per task that
# are no multiple of a tile (96, 48 or 32 floats) nor of a vector, 1 to 4 pixels per image.
FEW_PIXEL_DX_CASES = {
    "1_pixel_K300_C60": (2, 60, 3, 3, 300, 3, 1, 0, 1),
    "1_pixel_K37_taps_4": (1, 1, 2, 2, 37, 2, 1, 0, 1),
    "2_pixels_stride_3": (2, 5, 5, 8, 290, 3, 3, 0, 1),
    "3_pixels_N3": (3, 7, 3, 5, 270, 3, 1, 0, 1),
    "4_pixels_groups_2_padding_1": (1, 6, 2, 2, 42, 3, 1, 1, 2),
}


@pytest.mark.parametrize("name", list(FEW_PIXEL_DX_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_few_pixel_dx_columns_equal_the_gemms_bit_for_bit(isa, dtype, name):
    """conv2d_backward_input's few-pixel column kernel (AVX2) sums the packed GEMM's blocks in
    its order: the same bits as the GEMM forced (few_pixel_kernel=False), at one and two threads,
    and the oracle's values."""
    N, C, H, W, K, F, stride, padding, groups = FEW_PIXEL_DX_CASES[name]
    HO, WO = ((size + 2 * padding - F) // stride + 1 for size in (H, W))
    assert HO * WO <= 4
    rng = np.random.default_rng(K + C)
    w = rng.uniform(-1, 1, (K, C // groups, F, F)).astype(dtype)
    dy = rng.uniform(-1, 1, (N, K, HO, WO)).astype(dtype)
    results = []
    for few, threads in ((True, 1), (True, 2), (False, 1)):
        dx = np.full((N, C, H, W), np.nan, dtype)
        _conv.conv2d_backward_input(dy, w, dx, groups, stride, stride, padding, padding, 1, 1,
                                    _config.isa_code(), threads, few)
        results.append(dx)
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[2])
    kwargs = Case(N, C, H, W, K, F, F, stride=stride, padding=padding,
                  groups=groups).reference_kwargs()
    x = np.zeros((N, C, H, W), dtype)
    ref = conv2d_backward_reference(dy, x, w, **kwargs)[0]
    scale = conv2d_backward_reference(np.abs(dy), x, np.abs(w), **kwargs)[0]
    assert_close(results[0], ref, scale, dtype)


@pytest.mark.parametrize("groups, KG, CG, FH, FW", [(1, 5, 3, 3, 3), (2, 4, 3, 2, 5),
                                                    (3, 1, 2, 1, 1), (1, 0, 2, 3, 3)])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rotated_filters_are_each_groups_transposed_filters_turned_180_degrees(
        groups, KG, CG, FH, FW, dtype):
    w = np.random.default_rng(0).uniform(-1, 1, (groups * KG, CG, FH, FW)).astype(dtype)
    rotated = _conv.rotate_filters(w, groups, 2)
    assert rotated.shape == (groups * CG, KG, FH, FW) and rotated.dtype == dtype
    for g in range(groups):
        for c in range(CG):
            for k in range(KG):
                np.testing.assert_array_equal(rotated[g * CG + c, k],
                                              w[g * KG + k, c, ::-1, ::-1])


def case_geometry(case, dtype):
    """The validated geometry fastconv computes for a case's conv2d."""
    x = np.zeros((case.N, case.C, case.H, case.W), dtype)
    w = np.zeros((case.K, case.C // case.groups, case.FH, case.FW), dtype)
    return _geometry.conv2d_geometry("conv2d", x, w, None, case.stride, case.padding,
                                     case.dilation, case.groups)[3]


@pytest.mark.parametrize("name, driver", [
    ("N37_C3_3x3_K12_small_R_batch_parts", "dot"),
    ("N1_C8_40x15_K16_1x1_one_image_split_by_pixels", "gemm"),
    ("N1_C64_40x40_K16_one_image_split_by_rows", "filter tiles")])
def test_dw_of_few_blocks_is_really_summed_from_several_parts(name, driver):
    # The premise of the thread cases above: dw is summed from several parts on every ISA, by
    # images (dot products), or for a batch of one by blocks of one image's pixels (GEMM) or
    # output rows (filter tiles).
    case = THREAD_CASES[name]
    for isa in _config.available_isas():
        for dtype in DTYPES:
            geometry = case_geometry(case, dtype)
            assert fastconv.conv._backward_weight_driver(geometry, dtype().itemsize) == driver
            parts = _conv.backward_weight_parts(
                case.N, 1, case.C, case.K, case.FH, case.FW, geometry.HO, geometry.WO,
                *geometry.stride, *geometry.dilation, fastconv._runtime.ISA_CODES[isa],
                dtype == np.float32, driver)
            assert parts > 1, (isa, dtype, parts)


# Each driver forced on shapes that reach its edges: taps and filters not filling a tile,
# channels and filters split into several blocks, strides, dilations, 1x1.
DRIVER_CASES = {
    "taps_not_a_multiple_of_the_tile": Case(2, 5, 9, 11, 7, 3, 3, stride=2, padding=1),
    "groups_2_of_20_filters": Case(3, 4, 8, 8, 40, 2, 2, groups=2),
    "300_channels_in_two_blocks": Case(1, 300, 5, 5, 70, 3, 3, padding=1),
    "1100_filters_in_two_blocks": Case(1, 1, 12, 12, 1100, 11, 11),
    "11x11_stride_4": Case(2, 3, 30, 30, 20, 11, 11, stride=4, padding=2),
    "dilation_2_padding_3": Case(2, 6, 12, 13, 33, 3, 3, padding=3, dilation=2),
    "1x1_on_7x20": Case(2, 9, 7, 20, 17, 1, 1),
    # Padding only at the bottom and right, shown by HO and WO alone: x is not the band.
    "same_2x2_pads_bottom_right": Case(2, 6, 13, 16, 40, 2, 2, padding="same"),
    # Rows of whole vectors (16 and 32 wide) at unit stride: x is the band.
    "valid_3x3_on_18x34": Case(2, 3, 18, 34, 12, 3, 3),
}


@pytest.mark.parametrize("driver", list(fastconv.conv.BACKWARD_WEIGHT_DRIVERS))
@pytest.mark.parametrize("name", list(DRIVER_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_every_backward_weight_driver_matches_the_oracle(isa, dtype, name, driver):
    case = DRIVER_CASES[name]
    dy, x, w = make_inputs(case, dtype, seed=5)
    dw = fastconv.conv._backward_weight(dy, x, case_geometry(case, dtype), driver=driver)
    assert_close(dw, *driver_case_reference(name, dtype), dtype)


@functools.lru_cache(maxsize=None)
def driver_case_reference(name, dtype):
    """(dw, scale) of a driver case from the oracle, once per case and dtype."""
    case = DRIVER_CASES[name]
    dy, x, w = make_inputs(case, dtype, seed=5)
    kwargs = case.reference_kwargs()
    return (conv2d_backward_reference(dy, x, w, **kwargs)[1],
            conv2d_backward_reference(np.abs(dy), np.abs(x), np.abs(w), **kwargs)[1])


@st.composite
def backward_weight_geometries(draw):
    """Small geometries with every stride, dilation and padding combination up to 4/3/3, and
    a quarter with padding="same" (unit stride; even extents pad the bottom and right only)."""
    FH, FW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    DH, DW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    N, C, K = draw(st.integers(1, 3)), groups * draw(st.integers(1, 8)), groups * draw(
        st.integers(1, 40))
    if draw(st.integers(0, 3)) == 0:
        return Case(N, C, draw(st.integers(1, 20)), draw(st.integers(1, 20)), K, FH, FW,
                    padding="same", dilation=(DH, DW), groups=groups)
    PH, PW = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    H = draw(st.integers(max(1, DH * (FH - 1) + 1 - 2 * PH), 20))
    W = draw(st.integers(max(1, DW * (FW - 1) + 1 - 2 * PW), 20))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return Case(N, C, H, W, K, FH, FW, stride=stride, padding=(PH, PW), dilation=(DH, DW),
                groups=groups)


@given(case=backward_weight_geometries(), dtype=st.sampled_from(DTYPES),
       driver=st.sampled_from(list(fastconv.conv.BACKWARD_WEIGHT_DRIVERS)),
       seed=st.integers(0, 2**16))
def test_every_backward_weight_driver_on_random_geometries(isa, case, dtype, driver, seed):
    dy, x, w = make_inputs(case, dtype, seed)
    dw = fastconv.conv._backward_weight(dy, x, case_geometry(case, dtype), driver=driver)
    kwargs = case.reference_kwargs()
    assert_close(dw, conv2d_backward_reference(dy, x, w, **kwargs)[1],
                 conv2d_backward_reference(np.abs(dy), np.abs(x), np.abs(w), **kwargs)[1],
                 dtype)


@pytest.mark.parametrize("name, channel_blocks, filter_blocks", [
    ("300_channels_in_two_blocks", 2, 1), ("1100_filters_in_two_blocks", 1, 2)])
def test_filter_tile_cases_really_split_channels_and_filters(name, channel_blocks,
                                                            filter_blocks):
    # The premise of the two cases above, on every ISA path and dtype (float64 halves the
    # budget: at least as many blocks).
    case = DRIVER_CASES[name]
    for isa in _config.available_isas():
        for single in (True, False):
            channels, filters = _conv.backward_weight_filter_tile_blocks(
                case.C, case.FH * case.FW, case.K, fastconv._runtime.ISA_CODES[isa], single)
            assert -(-case.C // channels) >= channel_blocks, (isa, single, channels)
            assert -(-case.K // filters) >= filter_blocks, (isa, single, filters)


@pytest.mark.parametrize("name", list(THREAD_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_threads_give_bit_identical_gradients(isa, restore_threads, dtype, name):
    case = THREAD_CASES[name]
    dy, x, w = make_inputs(case, dtype, seed=3)
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results[threads] = conv2d_backward(dy, x, w, **case.conv_kwargs())
    for threads in (2, 3):
        for label, one, many in zip(("dx", "dw", "db"), results[1], results[threads]):
            np.testing.assert_array_equal(one, many, err_msg=f"{label}, {threads} threads")
    if isa == _config.available_isas()[-1]:  # the values once per case and dtype
        kwargs = case.reference_kwargs()
        ref = conv2d_backward_reference(dy, x, w, **kwargs)
        scale = conv2d_backward_reference(np.abs(dy), np.abs(x), np.abs(w), **kwargs)
        for got, r, s in zip(results[2], ref, scale):
            assert_close(got, r, s, dtype)


# ---------------------------------------------------------------------------------------------
# Unbatched input, layouts, untouched inputs, empty batches
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["3x3_pad1", "same_even_kernel_4x2", "depthwise_C6",
                                  "stride_2_with_remainder", "groups_2_stride_dilation"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_unbatched_3d_input_gives_3d_dx_and_the_images_dw(isa, dtype, name):
    case = NAMED_CASES[name]
    dy, x, w = case_inputs(name, dtype)
    n = case.N - 1
    dx, dw, db = conv2d_backward(dy[n], x[n], w, **case.conv_kwargs())
    assert dx.shape == x.shape[1:] and dw.shape == w.shape and db.shape == (case.K,)
    ref = conv2d_backward_reference(dy[n:n + 1], x[n:n + 1], w, **case.reference_kwargs())
    scale = conv2d_backward_reference(np.abs(dy[n:n + 1]), np.abs(x[n:n + 1]), np.abs(w),
                                      **case.reference_kwargs())
    assert_close(dx, ref[0][0], scale[0][0], dtype)
    assert_close(dw, ref[1], scale[1], dtype)
    assert_close(db, ref[2], scale[2], dtype)


def _layout_variants(dy, x, w):
    """(layout, dy, x, w): the same values in other memory layouts."""
    def reversed_view(a, axis):
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, -1)
        return np.ascontiguousarray(a[tuple(index)])[tuple(index)]

    def big_endian(a):
        return a.astype(a.dtype.newbyteorder(">"))

    yield "fortran_order", np.asfortranarray(dy), np.asfortranarray(x), np.asfortranarray(w)
    yield "negative_strides", reversed_view(dy, 2), reversed_view(x, 3), reversed_view(w, 0)
    def channels_last(a):
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    yield "channels_last_view", channels_last(dy), channels_last(x), w
    yield "big_endian", big_endian(dy), big_endian(x), big_endian(w)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_any_memory_layout_gives_the_same_dx_and_dw(dtype):
    name = "groups_2_stride_dilation"
    dy, x, w = case_inputs(name, dtype)
    kwargs = NAMED_CASES[name].conv_kwargs()
    expected = conv2d_backward(dy, x, w, **kwargs)
    for layout, *arrays in _layout_variants(dy, x, w):
        grads = conv2d_backward(*arrays, **kwargs)
        for label, got, want in zip(("dx", "dw", "db"), grads, expected):
            assert got.dtype == np.dtype(dtype) and got.dtype.isnative, layout
            assert got.shape == want.shape, layout
        np.testing.assert_array_equal(grads[0], expected[0], err_msg=f"{layout}: dx")
        np.testing.assert_array_equal(grads[1], expected[1], err_msg=f"{layout}: dw")
        assert_gradients_close(grads, name, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_db_does_not_depend_on_the_memory_layout_of_dy(dtype):
    # Like every other result, db must be bit-identical whatever the layout of the same values.
    name = "groups_2_stride_dilation"
    dy, x, w = case_inputs(name, dtype)
    kwargs = NAMED_CASES[name].conv_kwargs()
    expected = conv2d_backward(dy, x, w, **kwargs)[2]
    for layout, *arrays in _layout_variants(dy, x, w):
        np.testing.assert_array_equal(conv2d_backward(*arrays, **kwargs)[2], expected,
                                      err_msg=f"{layout}: db")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_inputs_are_never_modified(dtype):
    for name in ("many_output_tiles", "depthwise_C6", "stride_2_with_remainder"):
        dy, x, w = (a.copy() for a in case_inputs(name, dtype))
        copies = [a.copy() for a in (dy, x, w)]
        conv2d_backward(dy, x, w, **NAMED_CASES[name].conv_kwargs())
        for array, copy in zip((dy, x, w), copies):
            np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_empty_batch_gives_empty_dx_and_zero_dw_and_db(isa, dtype):
    x = np.zeros((0, 4, 7, 6), dtype)
    w = np.ones((6, 2, 3, 2), dtype)
    dy = np.zeros((0, 6, 4, 7), dtype)
    dirty_the_heap(w.nbytes)
    dx, dw, db = conv2d_backward(dy, x, w, stride=(2, 1), padding=1, groups=2)
    assert dx.shape == x.shape and dx.dtype == np.dtype(dtype)
    assert dw.dtype == np.dtype(dtype) and db.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dw, np.zeros(w.shape))
    np.testing.assert_array_equal(db, np.zeros(6))


# ---------------------------------------------------------------------------------------------
# conv2d_backward errors
# ---------------------------------------------------------------------------------------------

X = np.ones((2, 4, 6, 6), np.float32)
W = np.ones((6, 4, 3, 3), np.float32)
DY = np.ones((2, 6, 4, 4), np.float32)


@pytest.mark.parametrize("shape", [(2, 6, 4, 5), (2, 6, 3, 4), (2, 5, 4, 4), (1, 6, 4, 4),
                                   (6, 4, 4), (2, 6, 16), ()])
def test_dy_of_wrong_shape_is_a_value_error(shape):
    with raises(ValueError, "conv2d_backward: dy must have the forward output's shape "
                "(2, 6, 4, 4)", f"got {shape}"):
        conv2d_backward(np.ones(shape, np.float32), X, W)


def test_dy_of_wrong_shape_for_unbatched_input_is_a_value_error():
    with raises(ValueError, "conv2d_backward: dy must have the forward output's shape "
                "(6, 4, 4)", "got (1, 6, 4, 4)"):
        conv2d_backward(DY[:1], X[0], W)


def test_dy_shape_follows_stride_padding_and_dilation():
    with raises(ValueError, "conv2d_backward: dy must have the forward output's shape "
                "(2, 6, 3, 3)", "got (2, 6, 4, 4)"):
        conv2d_backward(DY, X, W, stride=2, padding=1)


@pytest.mark.parametrize("x_dtype, dy_dtype", [(np.float32, np.float64),
                                               (np.float64, np.float32)])
def test_dy_of_other_float_dtype_is_a_type_error(x_dtype, dy_dtype):
    xd, dd = np.dtype(x_dtype).name, np.dtype(dy_dtype).name
    with raises(TypeError, f"conv2d_backward: dy must have the dtype of x ({xd})", f"got {dd}"):
        conv2d_backward(DY.astype(dy_dtype), X.astype(x_dtype), W.astype(x_dtype))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex64, object],
                         ids=lambda d: np.dtype(d).name)
def test_dy_of_non_float_dtype_is_a_type_error(dtype):
    with raises(TypeError, "conv2d_backward: dy must be a float32 or float64 array",
                f"got dtype {np.dtype(dtype)}"):
        conv2d_backward(DY.astype(dtype), X, W)


def test_forward_argument_errors_name_conv2d_backward():
    with raises(ValueError, "conv2d_backward: x must have w.shape[1] * groups = 4 channels",
                "got 3"):
        conv2d_backward(DY, X[:, :3], W)
    with raises(TypeError, "conv2d_backward: w must have the dtype of x (float32)",
                "got float64"):
        conv2d_backward(DY, X, W.astype(np.float64))
    with raises(ValueError, "conv2d_backward: padding must be >= 0, got -1"):
        conv2d_backward(DY, X, W, padding=-1)
    with raises(ValueError, "conv2d_backward: stride must be 1 when padding='same'"):
        conv2d_backward(DY, X, W, padding="same", stride=2)
    with raises(TypeError, "conv2d_backward: groups must be an int", "got 1.0"):
        conv2d_backward(DY, X, W, groups=1.0)


# ---------------------------------------------------------------------------------------------
# conv_transpose2d
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransposeCase:
    """x (N, C_in, H, W), w (C_in, C_out/groups, FH, FW)."""
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    FH: int
    FW: int
    stride: object = 1
    padding: object = 0
    output_padding: object = 0
    groups: int = 1
    dilation: object = 1
    bias: bool = True

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, groups=self.groups,
                    dilation=self.dilation)

    def output_size(self):
        """PyTorch's formula (H-1)*S - 2P + D*(F-1) + output_padding + 1 per axis."""
        sizes = []
        for size, f, s, p, op, d in zip((self.H, self.W), (self.FH, self.FW),
                                        _pair(self.stride), _pair(self.padding),
                                        _pair(self.output_padding), _pair(self.dilation)):
            sizes.append((size - 1) * s - 2 * p + d * (f - 1) + op + 1)
        return tuple(sizes)


TRANSPOSE_CASES = {
    "stride_1_3x3": TransposeCase(2, 3, 5, 6, 4, 3, 3),
    "stride_2_no_bias": TransposeCase(2, 4, 5, 5, 3, 3, 3, stride=2, bias=False),
    "stride_2_padding_1_output_padding_1": TransposeCase(1, 3, 4, 6, 2, 3, 3, stride=2,
                                                         padding=1, output_padding=1),
    "stride_3x2_output_padding_2x1": TransposeCase(2, 2, 4, 5, 3, 2, 3, stride=(3, 2),
                                                   output_padding=(2, 1)),
    "stride_4_kernel_2_gaps_in_output": TransposeCase(1, 3, 3, 4, 2, 2, 2, stride=4,
                                                      output_padding=3),
    "dilation_2_output_padding_1": TransposeCase(1, 3, 5, 5, 4, 3, 3, dilation=2,
                                                 output_padding=1),
    "dilation_2x3_stride_2_padding": TransposeCase(1, 2, 6, 5, 3, 3, 2, stride=2, padding=(2, 1),
                                                   dilation=(2, 3)),
    "groups_2": TransposeCase(2, 4, 5, 6, 6, 3, 3, groups=2, stride=2, padding=1),
    "depthwise_groups_5": TransposeCase(1, 5, 6, 6, 5, 3, 3, groups=5, stride=2,
                                        output_padding=1),
    "nonsquare_kernel_2x5": TransposeCase(2, 3, 6, 4, 4, 2, 5, padding=(0, 2)),
    "kernel_1x1_stride_2": TransposeCase(1, 4, 5, 6, 3, 1, 1, stride=2),
    "padding_crops_more_than_the_kernel_adds": TransposeCase(1, 2, 7, 8, 3, 5, 5, padding=3),
    "C_in_64_C_out_17": TransposeCase(1, 64, 5, 5, 17, 3, 3, stride=2, padding=1),
    # dx's convolution has no padding but one more output row and column than its input
    # gives (output_padding): rows of 12 and 14 are whole filter-vector tiles, which must
    # still not read the input itself (fastconv._conv.reads_inside_x).
    "dilation_2_padding_4_output_padding_1_to_12x12": TransposeCase(
        1, 6, 15, 15, 32, 3, 3, padding=4, output_padding=1, dilation=2),
    "dilation_2_padding_4_output_padding_1_to_14x14": TransposeCase(
        1, 6, 17, 17, 32, 3, 3, padding=4, output_padding=1, dilation=2),
    # 1x1 filters at unit stride whose output is still a row or column larger than the input
    # (output_padding, allowed by the dilation): not a pointwise product of planes.
    "kernel_1x1_dilation_2_output_padding_1": TransposeCase(2, 8, 10, 10, 6, 1, 1, dilation=2,
                                                            output_padding=1),
    "kernel_1x1_one_row_dilation_1x2_output_padding_0x1": TransposeCase(
        2, 8, 1, 70, 6, 1, 1, dilation=(1, 2), output_padding=(0, 1)),
}


def transpose_inputs(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (case.N, case.C_in, case.H, case.W)).astype(dtype)
    w = rng.uniform(-1, 1, (case.C_in, case.C_out // case.groups, case.FH, case.FW)).astype(dtype)
    b = rng.uniform(-2, 2, case.C_out).astype(dtype) if case.bias else None
    return x, w, b


def assert_transpose_matches_reference(y, x, w, b, kwargs):
    ref = conv_transpose2d_reference(x, w, b, **kwargs)
    scale = conv_transpose2d_reference(np.abs(x), np.abs(w), None if b is None else np.abs(b),
                                       **kwargs)
    assert_close(y, ref, scale, x.dtype)


def test_transpose_reference_on_a_hand_computed_example():
    # A 2x2 input, all-ones 2x2 kernel, stride 2: each input pixel becomes a 2x2 block.
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = conv_transpose2d_reference(x, np.ones((1, 1, 2, 2)), stride=2)
    np.testing.assert_array_equal(y[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4],
                                            [3, 3, 4, 4]])
    # output_padding adds a zero row and column at the bottom/right (plus the bias).
    y = conv_transpose2d_reference(x, np.ones((1, 1, 2, 2)), np.array([0.5]), stride=2,
                                   output_padding=1)
    assert y.shape == (1, 1, 5, 5)
    np.testing.assert_array_equal(y[0, 0, 4], np.full(5, 0.5))
    np.testing.assert_array_equal(y[0, 0, :, 4], np.full(5, 0.5))


@pytest.mark.parametrize("name", list(TRANSPOSE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv_transpose_matches_oracle_on_named_cases(isa, dtype, name):
    case = TRANSPOSE_CASES[name]
    x, w, b = transpose_inputs(case, dtype)
    dirty_the_heap(case.N * case.C_out * np.prod(case.output_size()) * np.dtype(dtype).itemsize)
    y = conv_transpose2d(x, w, b, **case.kwargs())
    assert y.shape == (case.N, case.C_out) + case.output_size()
    assert_transpose_matches_reference(y, x, w, b, case.kwargs())


@pytest.mark.parametrize("name", ["stride_2_padding_1_output_padding_1", "groups_2",
                                  "dilation_2_output_padding_1", "stride_2_no_bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv_transpose_unbatched_3d_input_gives_3d_result(dtype, name):
    case = TRANSPOSE_CASES[name]
    x, w, b = transpose_inputs(case, dtype)
    y = conv_transpose2d(x[-1], w, b, **case.kwargs())
    assert y.shape == (case.C_out,) + case.output_size()
    np.testing.assert_array_equal(y, conv_transpose2d(x[-1:], w, b, **case.kwargs())[0])
    assert_transpose_matches_reference(y[np.newaxis], x[-1:], w, b, case.kwargs())


@st.composite
def transpose_geometries(draw):
    groups = draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    FH, FW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    # padding such that the output keeps at least one row and column
    padding = []
    for size, f, s, op, d in zip((H, W), (FH, FW), stride, output_padding, dilation):
        largest = ((size - 1) * s + d * (f - 1) + op) // 2
        padding.append(draw(st.integers(0, min(largest, 3))))
    return TransposeCase(draw(st.integers(1, 2)), draw(st.integers(1, 3)) * groups, H, W,
                         draw(st.integers(1, 3)) * groups, FH, FW, stride=stride,
                         padding=tuple(padding), output_padding=output_padding, groups=groups,
                         dilation=dilation, bias=draw(st.booleans()))


@given(case=transpose_geometries(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_conv_transpose_shape_formula_and_values_on_random_geometries(isa, case, dtype, seed):
    x, w, b = transpose_inputs(case, dtype, seed)
    y = conv_transpose2d(x, w, b, **case.kwargs())
    assert y.shape == (case.N, case.C_out) + case.output_size()
    assert_transpose_matches_reference(y, x, w, b, case.kwargs())


def _backward_as_transpose(case):
    """The conv_transpose2d arguments that give conv2d_backward's dx for a Case with int-pair
    padding: output_padding restores the input rows the forward's floor division dropped."""
    (SH, SW), (PH, PW), (DH, DW) = _pair(case.stride), _pair(case.padding), _pair(case.dilation)
    output_padding = ((case.H + 2 * PH - DH * (case.FH - 1) - 1) % SH,
                      (case.W + 2 * PW - DW * (case.FW - 1) - 1) % SW)
    return dict(stride=case.stride, padding=case.padding, output_padding=output_padding,
                groups=case.groups, dilation=case.dilation)


@pytest.mark.parametrize("name", ["3x3_pad1", "stride_2_with_remainder",
                                  "stride_3x2_with_remainder_padding_1",
                                  "stride_3_larger_than_kernel_2", "dilation_stride_padding",
                                  "groups_2_stride_dilation", "depthwise_C6",
                                  "alexnet_conv1_11x11_stride4_pad2_on_38x38"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv_transpose_of_dy_is_conv2d_backward_dx(isa, dtype, name):
    case = NAMED_CASES[name]
    dy, x, w = case_inputs(name, dtype)
    kwargs = _backward_as_transpose(case)
    y = conv_transpose2d(dy, w, **kwargs)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, conv2d_backward(dy, x, w, **case.conv_kwargs())[0])


@given(case=transpose_geometries(), seed=st.integers(0, 2**16))
def test_conv_transpose_is_the_adjoint_of_conv2d(case, seed):
    # <conv_transpose2d(x, w), v> == <x, conv2d(v, w)> for the conv2d whose input is the
    # transpose's output: the same operator pair, seen from the other side. (With an
    # output_padding >= stride, allowed below the dilation, conv2d has extra rows/columns that
    # no input element of the transpose maps to; they are cut off.)
    x, w, _ = transpose_inputs(case, np.float64, seed)
    y = conv_transpose2d(x, w, **case.kwargs())
    v = np.random.default_rng(seed + 1).uniform(-1, 1, y.shape)
    conv = conv2d(v, w, stride=case.stride, padding=case.padding, dilation=case.dilation,
                  groups=case.groups)
    assert conv.shape[:2] == x.shape[:2] and conv.shape[2] >= case.H and conv.shape[3] >= case.W
    conv = conv[:, :, :case.H, :case.W]
    magnitude = np.vdot(conv_transpose2d_reference(np.abs(x), np.abs(w), **case.kwargs()),
                        np.abs(v))
    assert abs(np.vdot(y, v) - np.vdot(x, conv)) <= 1e-12 * magnitude


# ---------------------------------------------------------------------------------------------
# conv_transpose2d errors
# ---------------------------------------------------------------------------------------------

XT = np.ones((2, 4, 5, 5), np.float32)
WT = np.ones((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("kwargs, shown", [
    (dict(stride=2, output_padding=2), "(2) in height, got 2"),
    (dict(stride=1, output_padding=1), "(1) in height, got 1"),
    (dict(stride=(1, 3), output_padding=(0, 3)), "(3) in width, got 3"),
    (dict(stride=2, dilation=3, output_padding=3), "(3) in height, got 3"),
    (dict(stride=(2, 1), dilation=(1, 2), output_padding=(1, 2)), "(2) in width, got 2"),
])
def test_output_padding_not_below_stride_or_dilation_is_a_value_error(kwargs, shown):
    with raises(ValueError, "conv_transpose2d: output_padding must be smaller than stride or "
                "dilation", shown):
        conv_transpose2d(XT, WT, **kwargs)


def test_output_padding_below_dilation_but_not_stride_is_accepted():
    y = conv_transpose2d(XT, WT, stride=1, dilation=2, output_padding=1)
    assert y.shape == (2, 3, 10, 10)


def test_w_first_axis_not_matching_x_channels_is_a_value_error():
    with raises(ValueError, "conv_transpose2d: w.shape[0] must equal the channels of x (4)",
                "got 3"):
        conv_transpose2d(XT, np.ones((3, 3, 3, 3), np.float32))
    with raises(ValueError, "conv_transpose2d: w.shape[0] must equal the channels of x (4)",
                "got 6"):
        conv_transpose2d(XT[0], np.ones((6, 3, 3, 3), np.float32))  # unbatched


@pytest.mark.parametrize("groups, shape", [(1, (4,)), (1, (2,)), (2, (3,)), (1, (1, 3)),
                                           (1, ())])
def test_bias_of_wrong_shape_is_a_value_error(groups, shape):
    expected = 3 * groups
    w = np.ones((4, 3, 3, 3), np.float32)
    with raises(ValueError, f"conv_transpose2d: b must have shape ({expected},) "
                "(w.shape[1] * groups)", f"got {shape}"):
        conv_transpose2d(XT, w, np.ones(shape, np.float32), groups=groups)


@pytest.mark.parametrize("groups", [3, 5, 8])
def test_groups_not_dividing_the_input_channels_is_a_value_error(groups):
    with raises(ValueError, f"conv_transpose2d: x channels must be divisible by groups "
                f"({groups})", "got 4"):
        conv_transpose2d(XT, WT, groups=groups)


@pytest.mark.parametrize("kwargs, axis, size", [
    (dict(padding=(1, 0)), "height", -1),
    (dict(padding=(0, 3)), "width", -1),
    (dict(stride=2, padding=(3, 0), output_padding=1), "height", -4),
])
def test_conv_transpose_negative_output_size_is_a_value_error(kwargs, axis, size):
    with raises(ValueError, f"conv_transpose2d: the output {axis}", f"must be >= 0, got {size}"):
        conv_transpose2d(np.ones((1, 1, 1, 5), np.float32), np.ones((1, 1, 1, 1), np.float32),
                         **kwargs)


# (x shape, w shape, stride, padding, output_padding, dilation, result shape): output_padding
# or dilation that padding crops away entirely.
ZERO_OUTPUT_CASES = {
    "height_0_audit_F5": ((2, 3, 2, 1), (3, 3, 1, 1), (3, 2), (2, 0), (0, 1), (2, 1),
                          (2, 3, 0, 2)),
    "width_0": ((2, 3, 1, 2), (3, 3, 1, 1), (2, 3), (0, 2), (1, 0), (1, 2), (2, 3, 2, 0)),
    "both_0_unbatched": ((3, 1, 1), (3, 2, 2, 2), 1, 1, 0, 1, (2, 0, 0)),
}


@pytest.mark.parametrize("name", list(ZERO_OUTPUT_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv_transpose_output_size_0_gives_an_empty_result(dtype, name):
    x_shape, w_shape, stride, padding, output_padding, dilation, shape = ZERO_OUTPUT_CASES[name]
    x, w = np.ones(x_shape, dtype), np.ones(w_shape, dtype)
    b = np.ones(w_shape[1], dtype)
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding,
                  dilation=dilation)
    y = conv_transpose2d(x, w, b, **kwargs)
    assert y.shape == shape and y.dtype == dtype
    batched = x if x.ndim == 4 else x[np.newaxis]
    assert conv_transpose2d_reference(batched, w, b, **kwargs).shape[-2:] == shape[-2:]


@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(stride=0), ValueError, ("stride must be >= 1, got 0",)),
    (dict(padding=-1), ValueError, ("padding must be >= 0, got -1",)),
    (dict(output_padding=-1), ValueError, ("output_padding must be >= 0, got -1",)),
    (dict(dilation=0), ValueError, ("dilation must be >= 1, got 0",)),
    (dict(groups=0), ValueError, ("groups must be >= 1, got 0",)),
    (dict(padding="same"), TypeError, ("padding must be an int or a pair of ints",
                                       "got 'same'")),
    (dict(output_padding=1.0), TypeError, ("output_padding must be an int or a pair of ints",
                                           "got 1.0")),
    (dict(stride=(1, 2, 3)), ValueError, ("stride must be an int or a pair of ints",
                                          "got (1, 2, 3)")),
    (dict(w=np.ones((4, 3, 3), np.float32)), ValueError, ("w must be 4-D", "got shape (4, 3, 3)")),
    (dict(x=np.ones((5, 5), np.float32)), ValueError, ("x must be 4-D", "3-D",
                                                       "got shape (5, 5)")),
    (dict(w=WT.astype(np.float64)), TypeError, ("w must have the dtype of x (float32)",
                                                "got float64")),
    (dict(b=np.ones(3, np.float64)), TypeError, ("b must have the dtype of x (float32)",
                                                 "got float64")),
    (dict(x=XT.astype(np.int32)), TypeError, ("x must be a float32 or float64 array",
                                              "got dtype int32")),
])
def test_conv_transpose_bad_arguments_are_refused_with_their_message(kwargs, exc, fragments):
    arguments = dict(x=XT, w=WT)
    arguments.update(kwargs)
    with raises(exc, "conv_transpose2d: ", *fragments):
        conv_transpose2d(**arguments)
