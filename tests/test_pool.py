"""max_pool2d, avg_pool2d, lp_pool2d and their backward passes against the float64 oracles
(tests/reference.py): every ISA path x dtype x named case and random geometries (hypothesis);
max-pool values and indices compared exactly, with ties, NaN and infinities on purpose; exact
gradient routing, finite differences and adjoint identities; thread-count independence,
unbatched inputs and every validation error with its message."""
import functools
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastconv
from fastconv import (
    avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward, max_pool2d,
    max_pool2d_backward,
)

from conftest import assert_close, dirty_the_heap, raises
from reference import (
    avg_pool2d_backward_reference, avg_pool2d_reference, lp_pool2d_backward_reference,
    lp_pool2d_reference, max_pool2d_reference, pool_output_size,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]


@dataclass(frozen=True)
class PoolCase:
    """A pooling problem over x (N, C, H, W)."""
    N: int
    C: int
    H: int
    W: int
    kernel_size: object
    stride: object = None
    padding: object = 0
    dilation: object = 1
    ceil_mode: bool = False

    @property
    def shape(self):
        return (self.N, self.C, self.H, self.W)

    def max_kwargs(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def avg_kwargs(self):
        assert self.dilation in (1, (1, 1))
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode)

    def lp_kwargs(self):
        assert self.dilation in (1, (1, 1)) and self.padding in (0, (0, 0))
        return dict(kernel_size=self.kernel_size, stride=self.stride, ceil_mode=self.ceil_mode)


POOL_CASES = {
    "F2_S2": PoolCase(2, 3, 8, 8, 2),
    "F2_S2_odd_size_drops_last_row_and_column": PoolCase(2, 3, 7, 9, 2),
    "F3_S2_overlapping": PoolCase(2, 3, 9, 9, 3, 2),
    "F3_S2_ceil_mode_partial_last_window": PoolCase(2, 3, 8, 10, 3, 2, ceil_mode=True),
    "F2_S2_ceil_mode_padding_last_window_dropped": PoolCase(1, 2, 5, 5, 2, 2, padding=1,
                                                            ceil_mode=True),
    "F3_S1_padding_1": PoolCase(2, 3, 7, 8, 3, 1, padding=1),
    "padding_pair_1x2_kernel_3x5_stride_2x3": PoolCase(1, 2, 6, 9, (3, 5), (2, 3),
                                                       padding=(1, 2)),
    "nonsquare_kernel_2x3_image_7x11": PoolCase(1, 3, 7, 11, (2, 3)),
    "stride_3_larger_than_kernel_2": PoolCase(1, 2, 11, 10, 2, 3),
    "stride_1_kernel_2": PoolCase(2, 2, 6, 7, 2, 1),
    "stride_1x2_kernel_3x2": PoolCase(1, 2, 8, 9, (3, 2), (1, 2)),
    "kernel_equals_input": PoolCase(2, 2, 5, 4, (5, 4)),
    "kernel_1x1_stride_2": PoolCase(1, 3, 5, 6, 1, 2),
    "N1_C1": PoolCase(1, 1, 5, 6, 2),
    "wide_rows_70_columns_F3_S2_padding_1": PoolCase(1, 2, 5, 70, 3, 2, padding=1),
    "many_planes_F3_S2_ceil_mode": PoolCase(3, 11, 9, 9, 3, 2, padding=1, ceil_mode=True),
    "dilation_2": PoolCase(2, 3, 10, 11, 3, 1, dilation=2),
    "dilation_2x3_padding_ceil_mode": PoolCase(1, 2, 12, 13, (3, 2), (2, 3), padding=1,
                                               dilation=(2, 3), ceil_mode=True),
    "large_dilated_window_6x8_d10_on_100x100": PoolCase(1, 2, 100, 100, (6, 8), (2, 3),
                                                        padding=(3, 4), dilation=10),
}
AVG_CASES = [name for name, case in POOL_CASES.items() if case.dilation == 1]
LP_CASES = [name for name in AVG_CASES if POOL_CASES[name].padding == 0]

MAX_DATA = ["uniform", "integer_ties", "nan_inf", "all_equal"]
AVG_FLAGS = {
    "count_include_pad": dict(count_include_pad=True),
    "exclude_pad": dict(count_include_pad=False),
    "divisor_override_3": dict(divisor_override=3),
    "exclude_pad_divisor_override_5": dict(count_include_pad=False, divisor_override=5),
    "negative_divisor_override_-3": dict(divisor_override=-3),
}
NORM_TYPES = [1, 2, 3, 1.5]


def pool_input(shape, dtype, data, seed=0):
    """Deterministic pooling inputs of one kind:
    uniform in [-1, 1); integer_ties: integers in [-2, 2], so windows hold ties; nan_inf: the
    same with about 10% NaN, 7% +inf and 13% -inf; all_equal: 0.5 everywhere; all_minus_inf;
    positive: uniform in [0.5, 2)."""
    rng = np.random.default_rng(seed)
    if data == "uniform":
        x = rng.uniform(-1, 1, shape)
    elif data in ("integer_ties", "nan_inf"):
        x = rng.integers(-2, 3, shape).astype(np.float64)
        if data == "nan_inf":
            u = rng.random(shape)
            x[u < 0.10] = np.nan
            x[(u >= 0.10) & (u < 0.17)] = np.inf
            x[(u >= 0.17) & (u < 0.30)] = -np.inf
    elif data == "all_equal":
        x = np.full(shape, 0.5)
    elif data == "all_minus_inf":
        x = np.full(shape, -np.inf)
    elif data == "positive":
        x = rng.uniform(0.5, 2, shape)
    else:
        raise ValueError(data)
    return x.astype(dtype)


@functools.lru_cache(maxsize=None)
def case_input(name, dtype, data):
    x = pool_input(POOL_CASES[name].shape, dtype, data)
    x.setflags(write=False)
    return x


@functools.lru_cache(maxsize=None)
def max_reference(name, dtype, data):
    return max_pool2d_reference(case_input(name, dtype, data), **POOL_CASES[name].max_kwargs())


def assert_max_pool_equal(y, indices, ref_y, ref_indices, dtype):
    """Values (NaN where the oracle has NaN) and indices exactly equal; int64 indices."""
    assert y.dtype == np.dtype(dtype) and indices.dtype == np.int64
    assert y.shape == ref_y.shape, (y.shape, ref_y.shape)
    assert indices.shape == ref_indices.shape
    if not np.array_equal(y.astype(np.float64), ref_y, equal_nan=True):
        where = tuple(np.argwhere(~((y == ref_y) | (np.isnan(y) & np.isnan(ref_y))))[0])
        raise AssertionError(f"values differ first at {where}: got {y[where]!r}, expected "
                             f"{ref_y[where]!r}")
    if not np.array_equal(indices, ref_indices):
        where = tuple(np.argwhere(indices != ref_indices)[0])
        raise AssertionError(f"indices differ first at {where}: got {indices[where]}, expected "
                             f"{ref_indices[where]} (value {y[where]!r})")


def scatter_by_indices(dy, indices, input_shape):
    """The max-pool gradient routing spelled with np.add.at, plane by plane in output order."""
    N, C, H, W = input_shape
    dx = np.zeros((N * C, H * W), dy.dtype)
    planes = np.repeat(np.arange(N * C), dy.shape[2] * dy.shape[3])
    np.add.at(dx, (planes, indices.reshape(-1)), dy.reshape(-1))
    return dx.reshape(input_shape)


# ---------------------------------------------------------------------------------------------
# The oracles themselves
# ---------------------------------------------------------------------------------------------

def test_max_pool_reference_on_a_hand_computed_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, indices = max_pool2d_reference(x, 2)
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(indices[0, 0], [[5, 7], [13, 15]])
    # Padding never wins, even against negative values; the index is the in-plane offset.
    y, indices = max_pool2d_reference(-x - 1, 2, padding=1)
    np.testing.assert_array_equal(y[0, 0], [[-1, -2, -4], [-5, -6, -8], [-13, -14, -16]])
    np.testing.assert_array_equal(indices[0, 0], [[0, 1, 3], [4, 5, 7], [12, 13, 15]])


def test_avg_and_lp_pool_references_on_hand_computed_examples():
    ones = np.ones((1, 1, 4, 4))
    np.testing.assert_array_equal(avg_pool2d_reference(ones, 2, padding=1)[0, 0],
                                  [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])
    np.testing.assert_array_equal(
        avg_pool2d_reference(ones, 2, padding=1, count_include_pad=False)[0, 0], np.ones((3, 3)))
    np.testing.assert_array_equal(
        avg_pool2d_reference(ones, 2, padding=1, divisor_override=1)[0, 0],
        [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # ceil_mode: the last window of a 5-wide input with kernel 2 covers one column, and with
    # count_include_pad its divisor is clipped to the (unpadded) input: 1 column, not 2.
    y = avg_pool2d_reference(np.ones((1, 1, 5, 5)), 2, ceil_mode=True)
    np.testing.assert_array_equal(y[0, 0], np.ones((3, 3)))
    np.testing.assert_array_equal(lp_pool2d_reference(np.full((1, 1, 2, 2), 3.0), 2, 2),
                                  [[[[6.0]]]])
    np.testing.assert_allclose(lp_pool2d_reference(np.full((1, 1, 2, 4), 2.0), 3, 2),
                               [[[[32 ** (1 / 3)] * 2]]], rtol=1e-15)
    # ceil_mode on 3 x 3 ones, kernel 2: the partial windows cover 2, 2 and 1 elements and are
    # scaled by 4/2, 4/2 and 4/1 (PyTorch's average times the window size), so all give 2.
    np.testing.assert_allclose(lp_pool2d_reference(np.ones((1, 1, 3, 3)), 2, 2, ceil_mode=True),
                               np.full((1, 1, 2, 2), 2.0), rtol=1e-15)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, ceil_mode, expected", [
    (8, 3, 2, 0, 1, False, 3),
    (8, 3, 2, 0, 1, True, 4),     # a partial last window at columns 6..7
    (5, 2, 2, 1, 1, False, 3),
    (5, 2, 2, 1, 1, True, 3),     # the 4th window would start at 6 - 1 = 5: past the input
    (6, 2, 2, 1, 1, True, 4),     # the 4th window starts at 5: inside the input
    (7, 2, 2, 0, 1, False, 3),
    (100, 6, 2, 3, 10, False, 28),
    (1, 1, 1, 0, 1, False, 1),
    (3, 4, 4, 0, 1, False, 0),    # kernel larger than the input
])
def test_reference_output_size_follows_pytorch(size, kernel, stride, padding, dilation,
                                               ceil_mode, expected):
    assert pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected


# ---------------------------------------------------------------------------------------------
# max_pool2d: values and indices, exactly
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(POOL_CASES))
@pytest.mark.parametrize("data", MAX_DATA)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pool_values_and_indices_match_oracle_exactly_on_named_cases(isa, dtype, data, name):
    x = case_input(name, dtype, data)
    ref_y, ref_indices = max_reference(name, dtype, data)
    dirty_the_heap(ref_y.size * 8)
    y, indices = max_pool2d(x, **POOL_CASES[name].max_kwargs(), return_indices=True)
    assert_max_pool_equal(y, indices, ref_y, ref_indices, dtype)


@pytest.mark.parametrize("name", list(POOL_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pool_all_equal_plane_gives_each_window_its_first_element(isa, dtype, name):
    case = POOL_CASES[name]
    y, indices = max_pool2d(case_input(name, dtype, "all_equal"), **case.max_kwargs(),
                            return_indices=True)
    assert np.all(y == 0.5)
    # The first element of each window: its first in-input row and column.
    (KH, KW), (SH, SW), (PH, PW), (DH, DW) = (_pair(case.kernel_size),
                                              _pair(case.stride or case.kernel_size),
                                              _pair(case.padding), _pair(case.dilation))
    ho = np.arange(y.shape[2])[:, None]
    wo = np.arange(y.shape[3])[None, :]
    first_row = ho * SH - PH + -(-np.maximum(PH - ho * SH, 0) // DH) * DH
    first_col = wo * SW - PW + -(-np.maximum(PW - wo * SW, 0) // DW) * DW
    np.testing.assert_array_equal(indices, np.broadcast_to(first_row * case.W + first_col,
                                                           indices.shape))


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _one_window(values, dtype):
    """max_pool2d of a single 4x4 plane with one 4x4 window: (value, index)."""
    x = np.array(values, dtype=dtype).reshape(1, 1, 4, 4)
    y, indices = max_pool2d(x, 4, return_indices=True)
    return y[0, 0, 0, 0], indices[0, 0, 0, 0]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_ties_go_to_the_first_maximum_in_row_major_order(isa, dtype):
    values = np.zeros(16)
    values[[6, 9, 14]] = 3.0
    assert _one_window(values, dtype) == (3.0, 6)
    values = np.full(16, -2.0)
    assert _one_window(values, dtype) == (-2.0, 0)
    values[[5, 15]] = 0.0  # -0.0 and 0.0 compare equal: the first one stays
    values[5] = -0.0
    value, index = _one_window(values, dtype)
    assert index == 5 and value == 0 and np.signbit(value)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nan_is_the_maximum_and_a_later_nan_replaces_an_earlier_one(isa, dtype):
    values = np.arange(16.0)
    values[6] = np.nan
    value, index = _one_window(values, dtype)
    assert np.isnan(value) and index == 6
    values[[3, 9]] = np.nan  # three NaNs: the last in row-major order wins
    value, index = _one_window(values, dtype)
    assert np.isnan(value) and index == 9
    values = np.zeros(16)
    values[0], values[15] = np.inf, np.nan  # +inf, then NaN: NaN replaces +inf
    value, index = _one_window(values, dtype)
    assert np.isnan(value) and index == 15
    values[0], values[15] = np.nan, np.inf  # NaN, then +inf: +inf does not replace NaN
    value, index = _one_window(values, dtype)
    assert np.isnan(value) and index == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_window_of_only_minus_inf_gives_minus_inf_at_its_first_element(isa, dtype):
    assert _one_window(np.full(16, -np.inf), dtype) == (-np.inf, 0)
    # With padding, the first element is the first one inside the input.
    x = np.full((1, 1, 5, 6), -np.inf, dtype)
    y, indices = max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(indices[0, 0], [[0, 1, 3], [6, 7, 9], [18, 19, 21]])
    ref_y, ref_indices = max_pool2d_reference(x, 3, stride=2, padding=1)
    assert_max_pool_equal(y, indices, ref_y, ref_indices, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nan_and_infinities_in_long_rows_match_oracle(isa, dtype):
    # Long rows exercise the vector loops of each ISA with NaN, +inf and -inf in every lane.
    x = pool_input((2, 3, 6, 131), dtype, "nan_inf", seed=5)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                   dict(kernel_size=(2, 3), stride=(1, 2), dilation=(1, 2), ceil_mode=True)):
        y, indices = max_pool2d(x, **kwargs, return_indices=True)
        assert_max_pool_equal(y, indices, *max_pool2d_reference(x, **kwargs), dtype)


@pytest.mark.parametrize("width", [2, 3, 14, 17, 30, 32, 34, 66])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_2x2_stride_2_rows_of_every_tail_length_match_oracle(isa, dtype, width):
    # The 2x2 stride-2 window has its own vector path (AVX-512 float32): 1 to 33 outputs per
    # row (partial vectors of 1, 7, 8, 15 and 1 after full ones), odd widths dropping the last
    # column, NaN and infinities in every tap position, with and without indices.
    x = pool_input((2, 3, 5, width), dtype, "nan_inf", seed=width)
    y, indices = max_pool2d(x, 2, return_indices=True)
    assert_max_pool_equal(y, indices, *max_pool2d_reference(x, 2), dtype)
    np.testing.assert_array_equal(max_pool2d(x, 2), y)
    # ceil_mode: the last row and column of windows hang over the edge and leave the fast path.
    y, indices = max_pool2d(x, 2, ceil_mode=True, return_indices=True)
    assert_max_pool_equal(y, indices, *max_pool2d_reference(x, 2, ceil_mode=True), dtype)


@pytest.mark.parametrize("width", [16, 17, 30, 34, 66])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_2x2_stride_2_values_keep_the_first_signed_zero_and_every_lone_nan(isa, dtype, width):
    # Without indices, AVX2 float32 reduces a vector's four taps with max instructions and hands
    # a vector holding a NaN to the exact loop. Ties between -0.0 and 0.0 must keep the first in
    # row-major order (the sign shows it), and a single NaN in any tap of any vector, the
    # overlapping last one included, must come out.
    rng = np.random.default_rng(width)
    x = rng.choice(np.array([-0.0, 0.0, -1.0]), size=(2, 3, 6, width)).astype(dtype)
    y = max_pool2d(x, 2)
    ref_y, _ = max_pool2d_reference(x, 2)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ref_y))
    for h, w in [(0, 0), (1, 1), (2, width - 1), (5, width // 2), (3, 15)]:
        lone = x.copy()
        lone[1, 2, h, min(w, width - 1)] = np.nan
        y = max_pool2d(lone, 2)
        ref_y, _ = max_pool2d_reference(lone, 2)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref_y))
        np.testing.assert_array_equal(y, ref_y)
        np.testing.assert_array_equal(np.signbit(y), np.signbit(ref_y))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_window_with_no_input_element_gives_minus_inf_and_an_index_past_the_plane(isa, dtype):
    # Kernel 2 with dilation 10 and padding 1 on 9 rows: the window's rows are -1 and 9, both
    # outside the input. PyTorch reports -inf at "index" (first row after clipping) * W + col,
    # i.e. row 9 of a 9-row plane; so does the oracle and so must max_pool2d.
    x = pool_input((1, 2, 9, 3), dtype, "uniform")
    kwargs = dict(kernel_size=(2, 1), padding=(1, 0), dilation=(10, 1))
    y, indices = max_pool2d(x, **kwargs, return_indices=True)
    ref_y, ref_indices = max_pool2d_reference(x, **kwargs)
    assert_max_pool_equal(y, indices, ref_y, ref_indices, dtype)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(indices[0, 0, 0], [27, 28, 29])
    # Such indices point outside the plane: the backward pass refuses them rather than writing
    # out of bounds.
    # Any of the out-of-plane indices (27, 28, 29) may be the one reported.
    with pytest.raises(ValueError, match=r"max_pool2d_backward: indices must lie in "
                                         r"\[0, H\*W = 27\).*got 2[789]"):
        max_pool2d_backward(np.ones_like(y), indices, x.shape)


@pytest.mark.parametrize("name", list(POOL_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_return_indices_false_gives_the_same_values(isa, dtype, name):
    x = case_input(name, dtype, "nan_inf")
    kwargs = POOL_CASES[name].max_kwargs()
    y_only = max_pool2d(x, **kwargs)
    y, _ = max_pool2d(x, **kwargs, return_indices=True)
    assert isinstance(y_only, np.ndarray) and y_only.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y_only, y)  # NaN == NaN for assert_array_equal


@st.composite
def pool_geometries(draw, dilation=True, padding=True):
    """Small random pooling problems with a valid output (PyTorch's padding <= kernel/2)."""
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    pads = (draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))) if padding else (0, 0)
    dils = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    sizes = []
    for k, p, d in zip((KH, KW), pads, dils):
        lowest = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(lowest, lowest + 8)))
    kernel_size = KH if KH == KW and draw(st.booleans()) else (KH, KW)
    return PoolCase(draw(st.integers(1, 2)), draw(st.integers(1, 3)), sizes[0], sizes[1],
                    kernel_size, stride, pads, dils, draw(st.booleans()))


@given(case=pool_geometries(), dtype=st.sampled_from(DTYPES),
       data=st.sampled_from(MAX_DATA + ["all_minus_inf"]), seed=st.integers(0, 2**16))
def test_max_pool_matches_oracle_exactly_on_random_geometries(isa, case, dtype, data, seed):
    x = pool_input(case.shape, dtype, data, seed)
    y, indices = max_pool2d(x, **case.max_kwargs(), return_indices=True)
    assert_max_pool_equal(y, indices, *max_pool2d_reference(x, **case.max_kwargs()), dtype)
    np.testing.assert_array_equal(max_pool2d(x, **case.max_kwargs()), y)


# ---------------------------------------------------------------------------------------------
# max_pool2d_backward
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(POOL_CASES))
@pytest.mark.parametrize("data", ["uniform", "integer_ties", "nan_inf"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pool_backward_routes_each_gradient_to_its_argmax(isa, dtype, data, name):
    case = POOL_CASES[name]
    x = case_input(name, dtype, data)
    y, indices = max_pool2d(x, **case.max_kwargs(), return_indices=True)
    dy = np.random.default_rng(4).uniform(-1, 1, y.shape).astype(dtype)
    dirty_the_heap(x.nbytes)
    dx = max_pool2d_backward(dy, indices, x.shape)
    assert dx.shape == x.shape and dx.dtype == np.dtype(dtype)
    # The same additions in the same order (plane by plane, outputs in order): bit-identical.
    np.testing.assert_array_equal(dx, scatter_by_indices(dy, indices, x.shape))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pool_backward_accumulates_where_windows_overlap(isa, dtype):
    # A 3x3 stride-1 pooling of a 5x5 plane whose maximum is the centre: all 9 windows hold it.
    x = np.zeros((1, 1, 5, 5), dtype)
    x[0, 0, 2, 2] = 10
    y, indices = max_pool2d(x, 3, stride=1, return_indices=True)
    assert np.all(indices == 12)
    dy = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    dx = max_pool2d_backward(dy, indices, x.shape)
    expected = np.zeros((5, 5))
    expected[2, 2] = 45
    np.testing.assert_array_equal(dx[0, 0], expected)
    # Kernel 3, stride 1, padding 1 on a 3x3 plane: all 9 windows hold the centre.
    x = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], dtype).reshape(1, 1, 3, 3)
    y, indices = max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert np.all(indices == 4)
    dx = max_pool2d_backward(np.ones_like(y), indices, x.shape)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 9, 0], [0, 0, 0]])


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint16, np.int8])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pool_backward_routes_any_valid_indices(isa, dtype, index_dtype):
    # Indices need not come from max_pool2d: any in-plane offsets are routed as given.
    rng = np.random.default_rng(8)
    input_shape = (2, 3, 7, 5)
    dy = rng.uniform(-1, 1, (2, 3, 4, 6)).astype(dtype)
    indices = rng.integers(0, 35, dy.shape).astype(index_dtype)
    dx = max_pool2d_backward(dy, indices, input_shape)
    np.testing.assert_array_equal(dx, scatter_by_indices(dy, indices.astype(np.int64),
                                                         input_shape))


@pytest.mark.parametrize("as_shape", [list, np.array, lambda shape: np.array(shape, np.int32),
                                      lambda shape: np.array(shape, np.uint64)],
                         ids=["list", "int64 array", "int32 array", "uint64 array"])
def test_pool_backward_takes_input_shape_as_a_list_or_an_integer_array(as_shape):
    # np.array(x.shape) is a shape a user may pass; a float array or a 2-D one is not.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 6, 5))
    y, indices = max_pool2d(x, 2, return_indices=True)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(max_pool2d_backward(dy, indices, as_shape(x.shape)),
                                  max_pool2d_backward(dy, indices, x.shape))
    np.testing.assert_array_equal(avg_pool2d_backward(dy, as_shape(x.shape), 2),
                                  avg_pool2d_backward(dy, x.shape, 2))
    for bad in (np.array(x.shape, float), np.array([x.shape])):
        with raises(ValueError, "max_pool2d_backward: input_shape must be (N, C, H, W)"):
            max_pool2d_backward(dy, indices, bad)


@pytest.mark.parametrize("bad, shown", [(-1, "-1"), (20, "20"), (2**62, str(2**62)),
                                        (-2**62, str(-2**62))])
def test_indices_outside_the_plane_are_value_errors_and_nothing_is_written(bad, shown):
    x = pool_input((1, 2, 4, 5), np.float64, "uniform")
    y, indices = max_pool2d(x, 2, return_indices=True)
    dy = np.ones_like(y)
    before = indices.copy()
    broken = indices.copy()
    broken[0, 1, 1, 0] = bad
    with raises(ValueError, "max_pool2d_backward: indices must lie in [0, H*W = 20) of their "
                "input plane", f"got {shown}"):
        max_pool2d_backward(dy, broken, x.shape)
    # Nothing was corrupted: the inputs are as they were and a valid call works as before.
    np.testing.assert_array_equal(indices, before)
    np.testing.assert_array_equal(max_pool2d_backward(dy, indices, x.shape),
                                  scatter_by_indices(dy, indices, x.shape))


@pytest.mark.parametrize("call", [
    lambda: max_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64),
                                (1, 1, 2**20, 2**20)),
    lambda: avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2**20, 2**20), 2**20),
], ids=["max", "avg"])
def test_pool_backward_refuses_an_absurd_input_shape_by_name(call):
    with raises(ValueError, "pool2d_backward: input_shape", "(1, 1, 1048576, 1048576)"):
        call()


@pytest.mark.parametrize("shape", [(1, 2, 2, 3), (1, 2, 2), (2, 2, 2, 2), (1, 2, 4)])
def test_indices_of_wrong_shape_are_value_errors(shape):
    dy = np.ones((1, 2, 2, 2))
    with raises(ValueError, "max_pool2d_backward: indices must have the shape of dy "
                "(1, 2, 2, 2)", f"got {shape}"):
        max_pool2d_backward(dy, np.zeros(shape, np.int64), (1, 2, 4, 4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.bool_, np.complex64, object],
                         ids=lambda d: np.dtype(d).name)
def test_indices_of_non_integer_dtype_are_type_errors(dtype):
    dy = np.ones((1, 2, 2, 2))
    with raises(TypeError, "max_pool2d_backward: indices must be an integer array",
                f"got dtype {np.dtype(dtype)}"):
        max_pool2d_backward(dy, np.zeros(dy.shape, dtype), (1, 2, 4, 4))


# ---------------------------------------------------------------------------------------------
# avg_pool2d
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def avg_reference(name, dtype, flags):
    """(forward, scale, backward, backward scale) of a named case and flag set."""
    case, kwargs = POOL_CASES[name], dict(case_avg_kwargs(name), **AVG_FLAGS[flags])
    x = case_input(name, dtype, "uniform")
    dy = avg_dy(name, dtype)
    # The scales are magnitudes: a negative divisor_override makes the sums of |terms| negative.
    return (avg_pool2d_reference(x, **kwargs), np.abs(avg_pool2d_reference(np.abs(x), **kwargs)),
            avg_pool2d_backward_reference(dy, case.shape, **kwargs),
            np.abs(avg_pool2d_backward_reference(np.abs(dy), case.shape, **kwargs)))


def case_avg_kwargs(name):
    return POOL_CASES[name].avg_kwargs()


@functools.lru_cache(maxsize=None)
def avg_dy(name, dtype):
    case = POOL_CASES[name]
    shape = avg_pool2d_reference(np.zeros(case.shape), **case.avg_kwargs()).shape
    dy = np.random.default_rng(6).uniform(-1, 1, shape).astype(dtype)
    dy.setflags(write=False)
    return dy


@pytest.mark.parametrize("name", AVG_CASES)
@pytest.mark.parametrize("flags", list(AVG_FLAGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_avg_pool_matches_oracle_on_named_cases(isa, dtype, flags, name):
    x = case_input(name, dtype, "uniform")
    ref, scale, _, _ = avg_reference(name, dtype, flags)
    dirty_the_heap(ref.size * np.dtype(dtype).itemsize)
    y = avg_pool2d(x, **case_avg_kwargs(name), **AVG_FLAGS[flags])
    assert_close(y, ref, scale, dtype)


@pytest.mark.parametrize("name", AVG_CASES)
@pytest.mark.parametrize("flags", list(AVG_FLAGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_avg_pool_backward_matches_oracle_on_named_cases(isa, dtype, flags, name):
    _, _, ref, scale = avg_reference(name, dtype, flags)
    dirty_the_heap(ref.size * np.dtype(dtype).itemsize)
    dx = avg_pool2d_backward(avg_dy(name, dtype), POOL_CASES[name].shape,
                             **case_avg_kwargs(name), **AVG_FLAGS[flags])
    assert_close(dx, ref, scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_count_include_pad_and_divisor_override_on_a_hand_computed_example(dtype):
    x = np.ones((1, 1, 4, 4), dtype)
    np.testing.assert_array_equal(avg_pool2d(x, 2, padding=1)[0, 0],
                                  [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])
    np.testing.assert_array_equal(avg_pool2d(x, 2, padding=1, count_include_pad=False),
                                  np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(avg_pool2d(x, 2, padding=1, divisor_override=2)[0, 0],
                                  [[0.5, 1, 0.5], [1, 2, 1], [0.5, 1, 0.5]])
    # Any non-zero divisor, negative too, as PyTorch.
    np.testing.assert_array_equal(avg_pool2d(x, 2, padding=1, divisor_override=-2)[0, 0],
                                  [[-0.5, -1, -0.5], [-1, -2, -1], [-0.5, -1, -0.5]])
    np.testing.assert_array_equal(
        avg_pool2d_backward(np.ones((1, 1, 3, 3), dtype), x.shape, 2, padding=1,
                            divisor_override=-4), np.full((1, 1, 4, 4), -0.25))
    dx = avg_pool2d_backward(np.ones((1, 1, 3, 3), dtype), x.shape, 2, padding=1)
    np.testing.assert_array_equal(dx, np.full((1, 1, 4, 4), 0.25))


AVG_FD_CASES = ["F3_S2_overlapping", "F3_S2_ceil_mode_partial_last_window",
                "F2_S2_ceil_mode_padding_last_window_dropped",
                "padding_pair_1x2_kernel_3x5_stride_2x3"]


@pytest.mark.parametrize("name", AVG_FD_CASES)
@pytest.mark.parametrize("flags", list(AVG_FLAGS))
def test_avg_pool_backward_matches_central_finite_differences(name, flags):
    kwargs = dict(case_avg_kwargs(name), **AVG_FLAGS[flags])
    x = case_input(name, np.float64, "uniform").copy()
    dy = avg_dy(name, np.float64)
    dx = avg_pool2d_backward(dy, x.shape, **kwargs)
    scale = avg_reference(name, np.float64, flags)[3]
    step = 1e-3
    for flat in np.random.default_rng(3).choice(x.size, 12, replace=False):
        where = np.unravel_index(flat, x.shape)
        plus, minus = x.copy(), x.copy()
        plus[where] += step
        minus[where] -= step
        numeric = np.sum((avg_pool2d(plus, **kwargs) - avg_pool2d(minus, **kwargs)) * dy) / (
            2 * step)
        assert abs(numeric - dx[where]) <= 1e-7 * scale[where], (where, numeric, dx[where])


@pytest.mark.parametrize("name", AVG_CASES)
@pytest.mark.parametrize("flags", list(AVG_FLAGS))
def test_avg_pool_backward_is_adjoint_of_forward(name, flags):
    # <avg_pool2d(x), dy> == <x, avg_pool2d_backward(dy)> in float64.
    kwargs = dict(case_avg_kwargs(name), **AVG_FLAGS[flags])
    x = case_input(name, np.float64, "uniform")
    dy = avg_dy(name, np.float64)
    lhs = np.vdot(avg_pool2d(x, **kwargs), dy)
    rhs = np.vdot(x, avg_pool2d_backward(dy, x.shape, **kwargs))
    assert abs(lhs - rhs) <= 1e-12 * np.vdot(np.abs(avg_pool2d_reference(np.abs(x), **kwargs)),
                                             np.abs(dy))


@given(case=pool_geometries(dilation=False), dtype=st.sampled_from(DTYPES),
       flags=st.sampled_from(list(AVG_FLAGS)), seed=st.integers(0, 2**16))
def test_avg_pool_and_backward_match_oracle_on_random_geometries(isa, case, dtype, flags,
                                                                  seed):
    kwargs = dict(case.avg_kwargs(), **AVG_FLAGS[flags])
    x = pool_input(case.shape, dtype, "uniform", seed)
    # Scales are magnitudes (a negative divisor_override makes sums of |terms| negative).
    assert_close(avg_pool2d(x, **kwargs), avg_pool2d_reference(x, **kwargs),
                 np.abs(avg_pool2d_reference(np.abs(x), **kwargs)), dtype)
    ref = avg_pool2d_reference(x, **kwargs)
    dy = np.random.default_rng(seed).uniform(-1, 1, ref.shape).astype(dtype)
    assert_close(avg_pool2d_backward(dy, x.shape, **kwargs),
                 avg_pool2d_backward_reference(dy, x.shape, **kwargs),
                 np.abs(avg_pool2d_backward_reference(np.abs(dy), x.shape, **kwargs)), dtype)


# ---------------------------------------------------------------------------------------------
# lp_pool2d
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def lp_reference(name, dtype, p):
    """(forward, backward, backward scale) of a named case on positive inputs."""
    case = POOL_CASES[name]
    x = case_input(name, dtype, "positive")
    dy = avg_dy(name, dtype)
    return (lp_pool2d_reference(x, p, **case.lp_kwargs()),
            lp_pool2d_backward_reference(dy, x, p, **case.lp_kwargs()),
            lp_pool2d_backward_reference(np.abs(dy), x, p, **case.lp_kwargs()))


@pytest.mark.parametrize("name", LP_CASES)
@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lp_pool_matches_oracle_on_positive_inputs(isa, dtype, p, name):
    ref, _, _ = lp_reference(name, dtype, p)
    y = lp_pool2d(case_input(name, dtype, "positive"), p, **POOL_CASES[name].lp_kwargs())
    assert_close(y, ref, ref, dtype)  # every term is positive: the scale is the result


@pytest.mark.parametrize("name", LP_CASES)
@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lp_pool_backward_matches_oracle_on_positive_inputs(isa, dtype, p, name):
    _, ref, scale = lp_reference(name, dtype, p)
    dx = lp_pool2d_backward(avg_dy(name, dtype), case_input(name, dtype, "positive"), p,
                            **POOL_CASES[name].lp_kwargs())
    assert_close(dx, ref, scale, dtype)


LP_FD_CASES = ["F2_S2", "F3_S2_overlapping", "F3_S2_ceil_mode_partial_last_window",
               "stride_1x2_kernel_3x2"]


@pytest.mark.parametrize("name", LP_FD_CASES)
@pytest.mark.parametrize("p", NORM_TYPES)
def test_lp_pool_backward_matches_central_finite_differences(name, p):
    kwargs = POOL_CASES[name].lp_kwargs()
    x = case_input(name, np.float64, "positive").copy()
    dy = avg_dy(name, np.float64)
    dx = lp_pool2d_backward(dy, x, p, **kwargs)
    scale = lp_reference(name, np.float64, p)[2]
    step = 1e-5
    for flat in np.random.default_rng(3).choice(x.size, 12, replace=False):
        where = np.unravel_index(flat, x.shape)
        plus, minus = x.copy(), x.copy()
        plus[where] += step
        minus[where] -= step
        numeric = np.sum((lp_pool2d(plus, p, **kwargs) - lp_pool2d(minus, p, **kwargs)) * dy) / (
            2 * step)
        assert abs(numeric - dx[where]) <= 1e-7 * scale[where], (where, numeric, dx[where])


@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lp_pool_gradient_at_an_all_zero_window_is_exactly_zero(dtype, p):
    x = pool_input((1, 2, 4, 6), dtype, "positive")
    x[0, 1, 2:4, 2:4] = 0   # window (1, 1) of plane 1
    x[0, 0, 0:2, 4:6] = 0   # window (0, 2) of plane 0
    y = lp_pool2d(x, p, 2)
    assert y[0, 1, 1, 1] == 0 and y[0, 0, 0, 2] == 0
    dy = np.ones_like(y)
    with np.errstate(all="raise"):  # no division by zero reaches the caller either
        dx = lp_pool2d_backward(dy, x, p, 2)
    assert np.all(np.isfinite(dx))
    np.testing.assert_array_equal(dx[0, 1, 2:4, 2:4], 0)
    np.testing.assert_array_equal(dx[0, 0, 0:2, 4:6], 0)
    ref = lp_pool2d_backward_reference(dy, x, p, 2)
    assert_close(dx, ref, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lp_pool_partial_ceil_mode_windows_are_scaled_to_the_full_window(dtype):
    # PyTorch's avg_pool2d(x**2) * 4 on 3 x 3 ones: every window, partial or not, gives
    # sqrt(4) = 2; dy = 1 reaches an element as 4/covered * x / y per window containing it.
    x = np.ones((1, 1, 3, 3), dtype)
    y = lp_pool2d(x, 2, 2, 2, ceil_mode=True)
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 2.0), rtol=1e-6)
    dx = lp_pool2d_backward(np.ones_like(y), x, 2, 2, 2, ceil_mode=True)
    np.testing.assert_allclose(dx[0, 0], [[0.5, 0.5, 1], [0.5, 0.5, 1], [1, 1, 2]], rtol=1e-6)
    # Without a partial window, ceil_mode changes nothing.
    x4 = np.ones((1, 1, 4, 4), dtype)
    np.testing.assert_array_equal(lp_pool2d(x4, 3, 2, ceil_mode=True), lp_pool2d(x4, 3, 2))


@given(case=pool_geometries(dilation=False, padding=False), dtype=st.sampled_from(DTYPES),
       p=st.sampled_from(NORM_TYPES), seed=st.integers(0, 2**16))
def test_lp_pool_and_backward_match_oracle_on_random_geometries(case, dtype, p, seed):
    x = pool_input(case.shape, dtype, "positive", seed)
    ref = lp_pool2d_reference(x, p, **case.lp_kwargs())
    assert_close(lp_pool2d(x, p, **case.lp_kwargs()), ref, ref, dtype)
    dy = np.random.default_rng(seed).uniform(-1, 1, ref.shape).astype(dtype)
    assert_close(lp_pool2d_backward(dy, x, p, **case.lp_kwargs()),
                 lp_pool2d_backward_reference(dy, x, p, **case.lp_kwargs()),
                 lp_pool2d_backward_reference(np.abs(dy), x, p, **case.lp_kwargs()), dtype)


INFINITE_NORMS = [float("inf"), -float("inf")]


@pytest.mark.parametrize("p", INFINITE_NORMS, ids=["inf", "minus_inf"])
def test_lp_pool_at_infinite_p_on_a_hand_computed_example(p):
    # Window of [[1, -3], [2, 0.5]]: the largest |x| is -3's, the smallest 0.5's; the gradient
    # goes there times the element's sign.
    x = np.array([[[[1.0, -3.0], [2.0, 0.5]]]])
    largest = p > 0
    np.testing.assert_array_equal(lp_pool2d(x, p, 2), [[[[3.0 if largest else 0.5]]]])
    expected = [[0, -1], [0, 0]] if largest else [[0, 0], [0, 1]]
    np.testing.assert_array_equal(lp_pool2d_backward(np.ones((1, 1, 1, 1)), x, p, 2)[0, 0],
                                  expected)


@pytest.mark.parametrize("p", INFINITE_NORMS, ids=["inf", "minus_inf"])
def test_lp_pool_at_infinite_p_ties_zeros_and_nan_follow_max_pool(p):
    # Ties go to the first element in window order, a NaN wins, and the gradient at 0 or NaN is
    # 0 (torch's gradient of abs there), not NaN.
    x = np.array([[[[-2.0, 2.0, 0.0, -0.0, 1.0, np.nan],
                    [2.0, -2.0, -0.0, 0.0, np.nan, 5.0]]]])
    y = lp_pool2d(x, p, 2)
    np.testing.assert_array_equal(y, [[[[2.0, 0.0, np.nan]]]])
    dx = lp_pool2d_backward(np.full((1, 1, 1, 3), 4.0), x, p, 2)
    np.testing.assert_array_equal(dx[0, 0], [[-4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])


@pytest.mark.parametrize("name", LP_CASES)
@pytest.mark.parametrize("data", ["integer_ties", "nan_inf", "uniform"])
@pytest.mark.parametrize("p", INFINITE_NORMS, ids=["inf", "minus_inf"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lp_pool_at_infinite_p_matches_oracle(isa, dtype, p, data, name):
    case = POOL_CASES[name]
    x = case_input(name, dtype, data)
    ref = lp_pool2d_reference(x, p, **case.lp_kwargs())
    y = lp_pool2d(x, p, **case.lp_kwargs())
    assert y.dtype == dtype
    assert np.array_equal(y, ref, equal_nan=True)  # a chosen element: exact
    dy = np.random.default_rng(5).uniform(-1, 1, ref.shape).astype(dtype)
    assert_close(lp_pool2d_backward(dy, x, p, **case.lp_kwargs()),
                 lp_pool2d_backward_reference(dy, x, p, **case.lp_kwargs()),
                 lp_pool2d_backward_reference(np.abs(dy), np.abs(x), p, **case.lp_kwargs()),
                 dtype)


# ---------------------------------------------------------------------------------------------
# Threads, unbatched inputs, untouched inputs, empty batches
# ---------------------------------------------------------------------------------------------

THREAD_CASE = PoolCase(3, 7, 23, 37, 3, 2, padding=1, ceil_mode=True)
LP_THREAD_CASE = replace(THREAD_CASE, padding=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_threads_give_bit_identical_results(isa, restore_threads, dtype):
    x = pool_input(THREAD_CASE.shape, dtype, "nan_inf", seed=9)
    x_avg = pool_input(THREAD_CASE.shape, dtype, "uniform", seed=9)
    x_lp = pool_input(THREAD_CASE.shape, dtype, "positive", seed=9)
    rng = np.random.default_rng(10)
    dy = rng.uniform(-1, 1, max_pool2d(x, **THREAD_CASE.max_kwargs()).shape).astype(dtype)
    dy_lp = rng.uniform(-1, 1, lp_pool2d(x_lp, 2, **LP_THREAD_CASE.lp_kwargs()).shape
                        ).astype(dtype)
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        y, indices = max_pool2d(x, **THREAD_CASE.max_kwargs(), return_indices=True)
        results[threads] = {
            "max_pool2d": y, "indices": indices,
            "max_pool2d_backward": max_pool2d_backward(dy, indices, x.shape),
            "avg_pool2d": avg_pool2d(x_avg, **THREAD_CASE.avg_kwargs(), count_include_pad=False),
            "avg_pool2d_backward": avg_pool2d_backward(dy, x.shape, **THREAD_CASE.avg_kwargs()),
            "lp_pool2d": lp_pool2d(x_lp, 1.5, **LP_THREAD_CASE.lp_kwargs()),
            "lp_pool2d_backward": lp_pool2d_backward(dy_lp, x_lp, 1.5,
                                                     **LP_THREAD_CASE.lp_kwargs()),
        }
    for threads in (2, 3):
        for name, one in results[1].items():
            np.testing.assert_array_equal(one, results[threads][name],
                                          err_msg=f"{name}, {threads} threads")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_unbatched_3d_input_gives_3d_results_for_every_function(isa, dtype):
    case = POOL_CASES["F3_S2_ceil_mode_partial_last_window"]
    x = case_input("F3_S2_ceil_mode_partial_last_window", dtype, "nan_inf")
    positive = case_input("F3_S2_ceil_mode_partial_last_window", dtype, "positive")
    n = 1
    y, indices = max_pool2d(x[n], **case.max_kwargs(), return_indices=True)
    y4, indices4 = max_pool2d(x, **case.max_kwargs(), return_indices=True)
    assert y.shape == y4.shape[1:] and indices.shape == indices4.shape[1:]
    np.testing.assert_array_equal(y, y4[n])
    np.testing.assert_array_equal(indices, indices4[n])
    np.testing.assert_array_equal(max_pool2d(x[n], **case.max_kwargs()), y4[n])
    dy = np.random.default_rng(1).uniform(-1, 1, y4.shape).astype(dtype)
    dx = max_pool2d_backward(dy[n], indices, x.shape[1:])
    assert dx.shape == x.shape[1:]
    np.testing.assert_array_equal(dx, max_pool2d_backward(dy, indices4, x.shape)[n])

    for flags in AVG_FLAGS.values():
        ya = avg_pool2d(positive[n], **case.avg_kwargs(), **flags)
        np.testing.assert_array_equal(ya, avg_pool2d(positive, **case.avg_kwargs(), **flags)[n])
        dxa = avg_pool2d_backward(dy[n], x.shape[1:], **case.avg_kwargs(), **flags)
        assert dxa.shape == x.shape[1:]
        np.testing.assert_array_equal(
            dxa, avg_pool2d_backward(dy, x.shape, **case.avg_kwargs(), **flags)[n])

    yl = lp_pool2d(positive[n], 2, **case.lp_kwargs())
    np.testing.assert_array_equal(yl, lp_pool2d(positive, 2, **case.lp_kwargs())[n])
    dxl = lp_pool2d_backward(dy[n], positive[n], 2, **case.lp_kwargs())
    assert dxl.shape == x.shape[1:]
    np.testing.assert_array_equal(dxl, lp_pool2d_backward(dy, positive, 2,
                                                          **case.lp_kwargs())[n])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_inputs_are_never_modified(dtype):
    case = POOL_CASES["F3_S1_padding_1"]
    x = pool_input(case.shape, dtype, "nan_inf")
    positive = pool_input(case.shape, dtype, "positive")
    y, indices = max_pool2d(x, **case.max_kwargs(), return_indices=True)
    dy = np.random.default_rng(2).uniform(-1, 1, y.shape).astype(dtype)
    copies = [a.copy() for a in (x, positive, indices, dy)]
    max_pool2d_backward(dy, indices, x.shape)
    avg_pool2d(x, **case.avg_kwargs())
    avg_pool2d_backward(dy, x.shape, **case.avg_kwargs())
    lp_pool2d(positive, 3, 3, 1)
    lp_pool2d_backward(dy[:, :, 1:-1, 1:-1], positive, 3, 3, 1)
    for array, copy in zip((x, positive, indices, dy), copies):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_empty_batch_gives_empty_results_of_the_right_shape(dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    y, indices = max_pool2d(x, 3, 2, padding=1, return_indices=True)
    assert y.shape == indices.shape == (0, 3, 4, 3) and y.dtype == np.dtype(dtype)
    assert max_pool2d_backward(y, indices, x.shape).shape == x.shape
    assert avg_pool2d(x, 3, 2, padding=1).shape == (0, 3, 4, 3)
    assert avg_pool2d_backward(y, x.shape, 3, 2, padding=1).shape == x.shape
    assert lp_pool2d(x, 2, 3, 2).shape == (0, 3, 3, 2)
    assert lp_pool2d_backward(np.zeros((0, 3, 3, 2), dtype), x, 2, 3, 2).shape == x.shape


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------

X = np.ones((2, 3, 6, 6), np.float32)
DY = np.ones((2, 3, 3, 3), np.float32)  # the output of kernel 2 on X

CALLS = {
    "max_pool2d": lambda **kw: max_pool2d(**{"x": X, "kernel_size": 2, **kw}),
    "avg_pool2d": lambda **kw: avg_pool2d(**{"x": X, "kernel_size": 2, **kw}),
    "lp_pool2d": lambda **kw: lp_pool2d(**{"x": X, "norm_type": 2, "kernel_size": 2, **kw}),
    "avg_pool2d_backward": lambda **kw: avg_pool2d_backward(
        **{"dy": DY, "input_shape": X.shape, "kernel_size": 2, **kw}),
    "lp_pool2d_backward": lambda **kw: lp_pool2d_backward(
        **{"dy": DY, "x": X, "norm_type": 2, "kernel_size": 2, **kw}),
}
WITH_PADDING = ["max_pool2d", "avg_pool2d", "avg_pool2d_backward"]
WITH_X = ["max_pool2d", "avg_pool2d", "lp_pool2d", "lp_pool2d_backward"]


def test_valid_defaults_of_the_error_table_are_accepted():
    for name, call in CALLS.items():
        assert call().shape in ((2, 3, 3, 3), X.shape), name


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(kernel_size=0), ValueError, ("kernel_size must be >= 1, got 0",)),
    (dict(kernel_size=(2, 0)), ValueError, ("kernel_size must be >= 1, got 0",)),
    (dict(kernel_size=-3), ValueError, ("kernel_size must be >= 1, got -3",)),
    (dict(kernel_size=1.5), TypeError, ("kernel_size must be an int or a pair of ints",
                                        "got 1.5")),
    (dict(kernel_size=None), TypeError, ("kernel_size must be an int or a pair of ints",
                                         "got None")),
    (dict(kernel_size=(2, True)), TypeError, ("kernel_size must be an int or a pair of ints",
                                              "got (2, True)")),
    (dict(kernel_size=(2, 2, 2)), ValueError, ("kernel_size must be an int or a pair of ints",
                                               "got (2, 2, 2)")),
    (dict(stride=0), ValueError, ("stride must be >= 1, got 0",)),
    (dict(stride=(1, -1)), ValueError, ("stride must be >= 1, got -1",)),
    (dict(stride="2"), TypeError, ("stride must be an int or a pair of ints", "got '2'")),
    (dict(stride=2.0), TypeError, ("stride must be an int or a pair of ints", "got 2.0")),
    (dict(ceil_mode=1), TypeError, ("ceil_mode must be a bool, got 1",)),
    (dict(ceil_mode=None), TypeError, ("ceil_mode must be a bool, got None",)),
    (dict(ceil_mode="True"), TypeError, ("ceil_mode must be a bool, got 'True'",)),
    (dict(kernel_size=7), ValueError, ("the output height must be >= 1, got 0",
                                       "input 6, padding 0, dilated kernel 7, stride 7")),
    (dict(kernel_size=(2, 9), stride=1), ValueError,
     ("the output width must be >= 1, got -2", "input 6, padding 0, dilated kernel 9, stride 1")),
])
def test_bad_kernel_stride_or_ceil_mode_is_refused_by_every_pool_function(name, kwargs, exc,
                                                                         fragments):
    with raises(exc, f"{name}: ", *fragments):
        CALLS[name](**kwargs)


@pytest.mark.parametrize("name", WITH_PADDING)
@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(kernel_size=3, padding=2), ValueError,
     ("padding must be at most half of kernel_size (1) in height, got 2",)),
    (dict(kernel_size=(2, 3), padding=(1, 2)), ValueError,
     ("padding must be at most half of kernel_size (1) in width, got 2",)),
    (dict(kernel_size=1, padding=1), ValueError,
     ("padding must be at most half of kernel_size (0) in height, got 1",)),
    (dict(padding=-1), ValueError, ("padding must be >= 0, got -1",)),
    (dict(padding=(0, 1.0)), TypeError, ("padding must be an int or a pair of ints",
                                         "got (0, 1.0)")),
    (dict(padding="same"), TypeError, ("padding must be an int or a pair of ints",
                                       "got 'same'")),
])
def test_padding_negative_or_beyond_half_the_kernel_is_refused(name, kwargs, exc, fragments):
    with raises(exc, f"{name}: ", *fragments):
        CALLS[name](**kwargs)


def test_padding_up_to_half_the_kernel_is_accepted():
    assert max_pool2d(X, 2, padding=1).shape == (2, 3, 4, 4)
    assert avg_pool2d(X, (5, 3), padding=(2, 1)).shape == (2, 3, 2, 2)


@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(dilation=0), ValueError, ("dilation must be >= 1, got 0",)),
    (dict(dilation=(1, 1.5)), TypeError, ("dilation must be an int or a pair of ints",
                                          "got (1, 1.5)")),
    (dict(dilation=6), ValueError, ("the output height must be >= 1, got 0",
                                    "dilated kernel 7")),
    (dict(return_indices=None), TypeError, ("return_indices must be a bool, got None",)),
    (dict(return_indices="yes"), TypeError, ("return_indices must be a bool, got 'yes'",)),
    (dict(return_indices=1.0), TypeError, ("return_indices must be a bool, got 1.0",)),
    (dict(return_indices=2), ValueError, ("return_indices must be 0 or 1 when an int, got 2",)),
    (dict(return_indices=-1), ValueError,
     ("return_indices must be 0 or 1 when an int, got -1",)),
])
def test_bad_dilation_or_return_indices_is_refused_by_max_pool(kwargs, exc, fragments):
    with raises(exc, "max_pool2d: ", *fragments):
        CALLS["max_pool2d"](**kwargs)


@pytest.mark.parametrize("flag", [0, 1, np.int64(1), np.uint8(0), np.bool_(True), False],
                         ids=["0", "1", "int64_1", "uint8_0", "numpy_bool", "False"])
def test_return_indices_takes_0_and_1_as_bools(flag):
    # PyTorch takes return_indices by truthiness; 0 and 1 are its common spellings.
    result = CALLS["max_pool2d"](return_indices=flag)
    if flag:
        y, indices = result
        np.testing.assert_array_equal(indices, max_pool2d(X, 2, return_indices=True)[1])
    else:
        y = result
        assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, max_pool2d(X, 2))


@pytest.mark.parametrize("name", ["avg_pool2d", "avg_pool2d_backward"])
@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(count_include_pad=0), TypeError, ("count_include_pad must be a bool, got 0",)),
    (dict(count_include_pad="no"), TypeError, ("count_include_pad must be a bool, got 'no'",)),
    (dict(divisor_override=0), ValueError,
     ("divisor_override must be a non-zero int or None, got 0",)),
    (dict(divisor_override=-2**41), ValueError,
     (f"divisor_override must be >= {-2**40}, got {-2**41}",)),
    (dict(divisor_override=1.5), TypeError, ("divisor_override must be an int, got 1.5",)),
    (dict(divisor_override=True), TypeError, ("divisor_override must be an int, got True",)),
])
def test_bad_count_include_pad_or_divisor_override_is_refused(name, kwargs, exc, fragments):
    with raises(exc, f"{name}: ", *fragments):
        CALLS[name](**kwargs)


@pytest.mark.parametrize("name", ["lp_pool2d", "lp_pool2d_backward"])
@pytest.mark.parametrize("value, exc, shown", [
    (0, ValueError, "norm_type must be a number > 0, inf or -inf, got 0.0"),
    (-1, ValueError, "norm_type must be a number > 0, inf or -inf, got -1.0"),
    (-0.5, ValueError, "norm_type must be a number > 0, inf or -inf, got -0.5"),
    (float("nan"), ValueError, "norm_type must be a number > 0, inf or -inf, got nan"),
    (10**400, ValueError, "norm_type must be a number > 0 within float's range, inf or -inf, "
                          "got 1000000"),
    ("2", TypeError, "norm_type must be a real number, got '2'"),
    (None, TypeError, "norm_type must be a real number, got None"),
    (True, TypeError, "norm_type must be a real number, got True"),
    (2 + 0j, TypeError, "norm_type must be a real number, got (2+0j)"),
])
def test_norm_type_must_be_positive_or_infinite(name, value, exc, shown):
    with raises(exc, f"{name}: ", shown):
        CALLS[name](norm_type=value)


@pytest.mark.parametrize("name", ["lp_pool2d", "lp_pool2d_backward"])
@pytest.mark.parametrize("value", [float("inf"), -float("inf"), np.float32(-np.inf)])
def test_infinite_norm_type_is_accepted(name, value):
    assert CALLS[name](norm_type=value).shape in ((2, 3, 3, 3), X.shape)


@pytest.mark.parametrize("name", WITH_X)
def test_x_of_wrong_ndim_or_dtype_is_refused(name):
    with raises(ValueError, f"{name}: x must be 4-D (N, C, H, W) or 3-D (C, H, W)",
                "got shape (6, 6)"):
        CALLS[name](x=X[0, 0])
    with raises(ValueError, f"{name}: x must be 4-D", "got shape (1, 2, 3, 6, 6)"):
        CALLS[name](x=np.ones((1, 2, 3, 6, 6), np.float32))
    for dtype in (np.int64, np.float16, np.bool_):
        with raises(TypeError, f"{name}: x must be a float32 or float64 array",
                    f"got dtype {np.dtype(dtype)}"):
            CALLS[name](x=X.astype(dtype))


@pytest.mark.parametrize("value, exc, fragments", [
    ((6, 6), ValueError, ("input_shape must be (N, C, H, W) or (C, H, W), got (6, 6)",)),
    ((1, 2, 3, 6, 6), ValueError, ("input_shape must be (N, C, H, W) or (C, H, W)",
                                   "got (1, 2, 3, 6, 6)")),
    ("abcd", ValueError, ("input_shape must be (N, C, H, W) or (C, H, W), got 'abcd'",)),
    (None, ValueError, ("input_shape must be (N, C, H, W) or (C, H, W), got None",)),
    ((2, 3, -1, 6), ValueError, ("input_shape must be >= 0, got -1",)),
    ((2, 3, 6.0, 6), TypeError, ("input_shape must be an int, got 6.0",)),
    ([2, 3, 6, "6"], TypeError, ("input_shape must be an int, got '6'",)),
])
@pytest.mark.parametrize("name", ["max_pool2d_backward", "avg_pool2d_backward"])
def test_malformed_input_shape_is_refused(name, value, exc, fragments):
    with raises(exc, f"{name}: ", *fragments):
        if name == "max_pool2d_backward":
            max_pool2d_backward(DY, np.zeros(DY.shape, np.int64), value)
        else:
            avg_pool2d_backward(DY, value, 2)


@pytest.mark.parametrize("name", ["avg_pool2d_backward", "lp_pool2d_backward"])
def test_dy_of_wrong_shape_is_a_value_error(name):
    with raises(ValueError, f"{name}: dy must have the forward output's shape (2, 3, 3, 3)",
                "got (2, 3, 3, 4)"):
        CALLS[name](dy=np.ones((2, 3, 3, 4), np.float32))
    with raises(ValueError, f"{name}: dy must have the forward output's shape (2, 3, 2, 2)",
                "got (2, 3, 3, 3)"):
        CALLS[name](kernel_size=3)
    with raises(ValueError, f"{name}: dy must have the forward output's shape (2, 3, 3, 3)",
                "got (3, 3, 3)"):
        CALLS[name](dy=DY[0])
    unbatched = dict(input_shape=X.shape[1:]) if name == "avg_pool2d_backward" else dict(x=X[0])
    with raises(ValueError, f"{name}: dy must have the forward output's shape (3, 3, 3)",
                "got (2, 3, 3, 3)"):
        CALLS[name](**unbatched)


@pytest.mark.parametrize("name", ["avg_pool2d_backward", "lp_pool2d_backward"])
def test_dy_of_non_float_dtype_is_a_type_error(name):
    with raises(TypeError, f"{name}: dy must be a float32 or float64 array", "got dtype int64"):
        CALLS[name](dy=DY.astype(np.int64))


def test_lp_pool_backward_dy_of_other_float_dtype_is_a_type_error():
    with raises(TypeError, "lp_pool2d_backward: dy must have the dtype of x (float32)",
                "got float64"):
        CALLS["lp_pool2d_backward"](dy=DY.astype(np.float64))


def test_max_pool_backward_refuses_dy_not_matching_input_shape():
    indices = np.zeros(DY.shape, np.int64)
    with raises(ValueError, "max_pool2d_backward: dy must have 4 dimensions like input_shape",
                "got shape (3, 3, 3)"):
        max_pool2d_backward(DY[0], indices, X.shape)
    with raises(ValueError, "max_pool2d_backward: dy must have 3 dimensions like input_shape",
                "got shape (2, 3, 3, 3)"):
        max_pool2d_backward(DY, indices, X.shape[1:])
    with raises(ValueError, "max_pool2d_backward: dy must have input_shape's batch and channels "
                "(2, 4, 3, 3)", "got (2, 3, 3, 3)"):
        max_pool2d_backward(DY, indices, (2, 4, 6, 6))
    with raises(ValueError, "max_pool2d_backward: dy must have input_shape's batch and channels "
                "(1, 3, 3, 3)", "got (2, 3, 3, 3)"):
        max_pool2d_backward(DY, indices, (1, 3, 6, 6))
    with raises(TypeError, "max_pool2d_backward: dy must be a float32 or float64 array",
                "got dtype int64"):
        max_pool2d_backward(DY.astype(np.int64), indices, X.shape)


def test_empty_stride_means_kernel_size_and_one_element_sequences_both_axes():
    # PyTorch's conventions for max_pool2d/avg_pool2d arguments.
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    expected = max_pool2d(x, 2)
    np.testing.assert_array_equal(max_pool2d(x, (2,), stride=()), expected)
    np.testing.assert_array_equal(max_pool2d(x, [2], stride=[]), expected)
    np.testing.assert_array_equal(avg_pool2d(x, (2,), stride=(2,)), avg_pool2d(x, 2))
