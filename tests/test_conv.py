"""conv2d against the float64 oracle (tests/reference.py): every algorithm x dtype x ISA path x
named case, random geometries (hypothesis), thread-count independence, memory layouts, empty
batches, NaN/Inf propagation and independence from leftover memory."""
import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastconv
from fastconv import conv2d

from conftest import RTOL, assert_close, assert_matches_reference, reference_and_scale
from reference import conv2d_reference, conv2d_reference_pointwise, same_padding

ALGORITHMS = ["direct", "im2col", "auto"]
DTYPES = [np.float32, np.float64]


@dataclass(frozen=True)
class Case:
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
    bias: bool = True

    def reference_padding(self):
        """The padding in the oracle's ((top, bottom), (left, right)) form."""
        if self.padding == "valid":
            return 0
        if self.padding == "same":
            return same_padding((self.FH, self.FW), self.dilation)
        return self.padding

    def reference_kwargs(self):
        return dict(stride=self.stride, padding=self.reference_padding(),
                    dilation=self.dilation, groups=self.groups)

    def conv_kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


NAMED_CASES = {
    "3x3_pad1": Case(2, 3, 8, 8, 4, 3, 3, padding=1),
    "nonsquare_kernel_2x5": Case(2, 3, 9, 11, 5, 2, 5),
    "nonsquare_kernel_5x1": Case(1, 4, 10, 6, 3, 5, 1, padding=(2, 0)),
    "nonsquare_image_7x13": Case(1, 2, 7, 13, 3, 3, 3),
    "tall_image_19x4": Case(2, 3, 19, 4, 6, 3, 2, padding=1),
    "stride_2_with_remainder": Case(2, 3, 10, 11, 4, 3, 3, stride=2),
    "stride_pair_3x2_with_remainder": Case(1, 2, 13, 12, 5, 3, 4, stride=(3, 2), padding=1),
    "stride_larger_than_kernel": Case(1, 3, 11, 11, 4, 2, 2, stride=3),
    "stride_far_beyond_the_image": Case(2, 3, 5, 6, 4, 2, 3, stride=10**6),
    "padding_int_2": Case(2, 3, 6, 7, 4, 3, 3, padding=2),
    "padding_pair_1x3": Case(1, 3, 6, 5, 4, 3, 3, padding=(1, 3)),
    "padding_pair_list": Case(1, 2, 5, 6, 3, 2, 3, padding=[2, 1]),
    "padding_larger_than_kernel": Case(1, 2, 3, 4, 3, 2, 2, padding=4),
    "padding_valid": Case(2, 3, 7, 9, 4, 3, 2, padding="valid"),
    "padding_same_odd_kernel_3x5": Case(2, 3, 7, 9, 4, 3, 5, padding="same"),
    "padding_same_even_kernel_4x2": Case(1, 3, 7, 8, 5, 4, 2, padding="same"),
    "padding_same_even_kernel_2x2": Case(2, 2, 5, 5, 3, 2, 2, padding="same"),
    "padding_same_dilated_3x3_d2": Case(1, 3, 9, 8, 4, 3, 3, padding="same", dilation=2),
    "padding_same_dilated_even_2x4_d3x1": Case(1, 2, 8, 9, 3, 2, 4, padding="same",
                                               dilation=(3, 1)),
    "dilation_2": Case(2, 3, 11, 10, 4, 3, 3, dilation=2),
    "dilation_pair_2x3_padding": Case(1, 2, 9, 12, 3, 3, 2, dilation=(2, 3), padding=(1, 2)),
    "dilation_500_reaching_across_padding_500": Case(1, 2, 1, 4, 3, 2, 2, padding=(500, 0),
                                                     dilation=(500, 1)),
    "dilation_and_stride": Case(1, 3, 15, 14, 5, 3, 3, stride=2, dilation=2, padding=1),
    "groups_2": Case(2, 4, 7, 8, 6, 3, 3, groups=2, padding=1),
    "groups_2_stride_dilation": Case(1, 6, 11, 9, 4, 3, 2, groups=2, stride=2, dilation=(1, 2)),
    "groups_3_big_reduction_per_group": Case(1, 48, 6, 6, 9, 3, 3, groups=3, padding=1),
    "depthwise_C6": Case(2, 6, 8, 7, 6, 3, 3, groups=6, padding=1),
    "depthwise_multiplier_2_K_is_2C": Case(1, 5, 9, 8, 10, 3, 3, groups=5, padding="same"),
    "depthwise_stride_2": Case(2, 4, 9, 9, 4, 5, 5, groups=4, stride=2, padding=2),
    "pointwise_1x1": Case(2, 8, 5, 6, 7, 1, 1),
    "pointwise_1x1_stride_2": Case(1, 4, 7, 8, 5, 1, 1, stride=2),
    "pointwise_1x1_padding": Case(1, 3, 3, 4, 2, 1, 1, padding=1),
    "batch_N1": Case(1, 3, 6, 6, 4, 3, 3, padding=1),
    "channels_C1": Case(3, 1, 8, 9, 5, 3, 3),
    "filters_K1": Case(2, 4, 6, 6, 1, 3, 3),
    "filters_K17": Case(2, 5, 7, 6, 17, 3, 3, padding=1),
    "filters_K33": Case(1, 7, 6, 8, 33, 3, 3),
    "filters_K40_few_pixels": Case(2, 6, 4, 4, 40, 3, 3),
    "filters_K70_one_pixel": Case(1, 9, 3, 3, 70, 3, 3),
    "big_reduction_C600_3x3": Case(1, 600, 5, 5, 5, 3, 3, padding=1),
    "big_reduction_C300_5x5_K33": Case(1, 300, 5, 6, 33, 5, 5),
    "kernel_equals_padded_input": Case(2, 3, 5, 4, 4, 7, 6, padding=1),
    "kernel_equals_input_valid": Case(1, 4, 6, 5, 3, 6, 5),
    "single_pixel_image_1x1_kernel": Case(2, 3, 1, 1, 4, 1, 1),
    "windows_entirely_in_padding": Case(1, 2, 2, 2, 3, 1, 1, padding=3),
    "windows_entirely_in_padding_no_bias": Case(1, 2, 2, 2, 3, 1, 1, padding=3, bias=False),
    "padding_beyond_kernel_reach_14_filters": Case(1, 1, 1, 1, 14, 1, 1, padding=1, bias=False),
    "padding_2_beyond_3x1_kernel_14_filters": Case(2, 3, 5, 4, 14, 3, 1, padding=2),
    "wide_image_70_columns": Case(1, 3, 4, 70, 5, 3, 3, padding=1),
    "many_output_tiles": Case(2, 8, 20, 23, 19, 3, 3, padding=1),
    "no_bias_3x3": Case(2, 3, 8, 8, 4, 3, 3, padding=1, bias=False),
    "no_bias_groups_depthwise": Case(1, 4, 6, 6, 8, 3, 3, groups=4, bias=False),
    "no_bias_big_reduction": Case(1, 100, 4, 5, 18, 3, 3, padding=1, bias=False),
    # Strided rows of 20 outputs: the column matrix copies every s-th input (SIMD for s <= 8).
    **{f"stride_{s}_rows_of_20_outputs": Case(1, 8, 12, 20 * s + 2, 6, 3, 3, stride=s, padding=1)
       for s in (2, 3, 4, 5, 7, 8, 9)},
    # Output planes under 64 pixels: im2col's GEMM runs over the whole batch's pixels.
    "fc_layer_as_7x7_conv_batch_5_K70": Case(5, 40, 7, 7, 70, 7, 7),
    "pixel_blocks_straddling_images_N9_6x6_out": Case(9, 6, 8, 8, 19, 3, 3),
    "over_1024_filters_few_pixels": Case(2, 3, 5, 5, 1100, 3, 3, padding=1, bias=False),
    "groups_2_stride_2_few_pixels": Case(3, 8, 6, 7, 12, 3, 3, groups=2, stride=2, padding=1),
}


def make_inputs(case, dtype, seed=0):
    """Deterministic random inputs of a case (values in [-1, 1), bias in [-2, 2))."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (case.N, case.C, case.H, case.W)).astype(dtype)
    w = rng.uniform(-1, 1, (case.K, case.C // case.groups, case.FH, case.FW)).astype(dtype)
    b = rng.uniform(-2, 2, case.K).astype(dtype) if case.bias else None
    return x, w, b


@functools.lru_cache(maxsize=None)
def case_inputs(name, dtype):
    x, w, b = make_inputs(NAMED_CASES[name], dtype)
    for array in (x, w, b):
        if array is not None:
            array.setflags(write=False)  # shared by many tests: nobody may change them
    return x, w, b


@functools.lru_cache(maxsize=None)
def case_reference(name, dtype):
    """(reference, per-element sum of |terms|) of a named case, computed once per dtype."""
    return reference_and_scale(*case_inputs(name, dtype), **NAMED_CASES[name].reference_kwargs())


# ---------------------------------------------------------------------------------------------
# The oracle itself
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["3x3_pad1", "stride_pair_3x2_with_remainder",
                                  "padding_same_dilated_even_2x4_d3x1", "groups_2_stride_dilation",
                                  "depthwise_multiplier_2_K_is_2C", "windows_entirely_in_padding"])
def test_reference_agrees_with_elementwise_definition(name):
    case = NAMED_CASES[name]
    x, w, b = case_inputs(name, np.float64)
    expected = conv2d_reference_pointwise(x, w, b, **case.reference_kwargs())
    np.testing.assert_allclose(case_reference(name, np.float64)[0], expected,
                               rtol=1e-13, atol=1e-13)


def test_reference_on_a_hand_computed_example():
    # 1 image, 1 channel, 3x3 ramp, 2x2 kernel of [[1, 0], [0, -1]]: y = x[h, w] - x[h+1, w+1].
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    np.testing.assert_array_equal(conv2d_reference(x, w), np.full((1, 1, 2, 2), -4.0))
    np.testing.assert_array_equal(conv2d_reference(x, w, np.array([10.0])),
                                  np.full((1, 1, 2, 2), 6.0))


# ---------------------------------------------------------------------------------------------
# Named cases and random geometries against the oracle
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(NAMED_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_matches_oracle_on_named_cases(isa, algorithm, dtype, name):
    case = NAMED_CASES[name]
    x, w, b = case_inputs(name, dtype)
    ref, scale = case_reference(name, dtype)
    _dirty_the_heap(ref.size * np.dtype(dtype).itemsize)  # an unwritten output would be NaN
    y = conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
    assert_close(y, ref, scale, dtype)
    if algorithm != "auto":
        assert fastconv.last_algorithm() == algorithm


@pytest.mark.parametrize("name", ["3x3_pad1", "depthwise_C6", "big_reduction_C600_3x3",
                                  "pointwise_1x1", "filters_K17"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_auto_gives_bit_identical_result_of_the_algorithm_it_reports(dtype, name):
    case = NAMED_CASES[name]
    x, w, b = case_inputs(name, dtype)
    y_auto = conv2d(x, w, b, algorithm="auto", **case.conv_kwargs())
    chosen = fastconv.last_algorithm()
    assert chosen in ("direct", "im2col")
    y_chosen = conv2d(x, w, b, algorithm=chosen, **case.conv_kwargs())
    np.testing.assert_array_equal(y_auto, y_chosen)


@pytest.mark.parametrize("name", ["3x3_pad1", "groups_2", "depthwise_multiplier_2_K_is_2C",
                                  "big_reduction_C600_3x3", "padding_same_even_kernel_4x2"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_small_integer_data_gives_exact_results(isa, algorithm, dtype, name):
    # Sums of products of small integers are exact in float32 and float64 whatever the order.
    case = NAMED_CASES[name]
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (case.N, case.C, case.H, case.W)).astype(dtype)
    w = rng.integers(-3, 4, (case.K, case.C // case.groups, case.FH, case.FW)).astype(dtype)
    b = rng.integers(-5, 6, case.K).astype(dtype)
    y = conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
    np.testing.assert_array_equal(y, conv2d_reference(x, w, b, **case.reference_kwargs()))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", ["3x3_pad1", "padding_same_even_kernel_4x2", "depthwise_C6",
                                  "stride_2_with_remainder", "no_bias_3x3"])
def test_unbatched_3d_input_gives_3d_result_like_pytorch(isa, algorithm, dtype, name):
    case = NAMED_CASES[name]
    x, w, b = case_inputs(name, dtype)
    y = conv2d(x[1 if case.N > 1 else 0], w, b, algorithm=algorithm, **case.conv_kwargs())
    ref, scale = case_reference(name, dtype)
    n = 1 if case.N > 1 else 0
    assert y.ndim == 3
    assert_close(y, ref[n], scale[n], dtype)


@st.composite
def geometries(draw):
    """Tiny random conv2d problems covering every parameter, always with a valid output."""
    groups = draw(st.integers(1, 3))
    CG = draw(st.integers(1, 4))
    KG = draw(st.integers(1, 5))
    FH, FW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kind = draw(st.sampled_from(["int", "pair", "valid", "same"]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if kind == "int":
        padding = draw(st.integers(0, 3))
        pads = (padding, padding)
    elif kind == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        pads = padding
    elif kind == "valid":
        padding, pads = "valid", (0, 0)
    else:
        padding, stride = "same", (1, 1)
        pads = None
    extents = (dilation[0] * (FH - 1) + 1, dilation[1] * (FW - 1) + 1)
    sizes = []
    for axis in range(2):
        if pads is None:  # "same" works for any size >= 1
            lowest = 1
        else:
            lowest = max(1, extents[axis] - 2 * pads[axis])
        sizes.append(draw(st.integers(lowest, lowest + 9)))
    N = draw(st.integers(1, 3))
    case = Case(N, CG * groups, sizes[0], sizes[1], KG * groups, FH, FW, stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))
    if draw(st.booleans()):  # also exercise the int (not pair) spelling
        if stride[0] == stride[1]:
            case = dataclasses.replace(case, stride=stride[0])
    return case


@given(case=geometries(), algorithm=st.sampled_from(ALGORITHMS),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_matches_oracle_on_random_geometries(isa, case, algorithm, dtype, seed):
    x, w, b = make_inputs(case, dtype, seed)
    y = conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


# ---------------------------------------------------------------------------------------------
# Small output planes: the GEMM over the batch's pixels
# ---------------------------------------------------------------------------------------------

SMALL_PLANE_CASES = ["fc_layer_as_7x7_conv_batch_5_K70", "pixel_blocks_straddling_images_N9_6x6_out",
                     "over_1024_filters_few_pixels", "groups_2_stride_2_few_pixels",
                     "filters_K70_one_pixel", "single_pixel_image_1x1_kernel"]


@pytest.mark.parametrize("name", SMALL_PLANE_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_over_the_batch_equals_the_per_image_gemm_bit_for_bit(isa, dtype, name):
    """conv2d_im2col_over_batch promises the per-image driver's sums in the same order."""
    from fastconv import _conv, conv as conv_module
    from fastconv._geometry import conv2d_geometry

    case = NAMED_CASES[name]
    x, w, b = make_inputs(case, dtype, seed=5)
    x, w, b, geometry, _ = conv2d_geometry("conv2d", x, w, b, case.stride, case.padding,
                                           case.dilation, case.groups)
    assert geometry.HO * geometry.WO < conv_module.GEMM_OVER_BATCH_BELOW_PIXELS
    bias = np.zeros(1, dtype) if b is None else b
    results = []
    for driver in (_conv.conv2d_im2col, _conv.conv2d_im2col_over_batch):
        y = np.full(geometry.output_shape, np.nan, dtype)
        driver(x, w, bias, b is not None, y, *conv_module._driver_arguments(geometry))
        results.append(y)
    np.testing.assert_array_equal(results[0], results[1])
    assert_matches_reference(results[1], x, w, b, **case.reference_kwargs())


def _drawn_case(N, CG, KG, groups, H, W, F, stride, dilation, padding, bias):
    """A Case from drawn parameters: unit stride with "same" (PyTorch allows no other), and an
    input at least as large as the dilated kernel minus the padding."""
    stride = 1 if padding == "same" else stride
    extent = dilation * (F - 1) + 1
    if padding != "same":
        H, W = max(H, extent - 2 * padding), max(W, extent - 2 * padding)
    return Case(N, CG * groups, H, W, KG * groups, F, F, stride=stride, padding=padding,
                dilation=dilation, groups=groups, bias=bias)


# ---------------------------------------------------------------------------------------------
# Small output planes with big filters: the GEMM that streams the filters from where they lie
# ---------------------------------------------------------------------------------------------

STREAMING_CASES = {
    **{name: NAMED_CASES[name] for name in SMALL_PLANE_CASES},
    # Filter rows of 8 (AVX-512) or 4 (AVX2) with a partial last block, reductions over several
    # 256-tap blocks (a partial last one), several pixel blocks of 8 panels, filters split into
    # tasks for the threads, and filter blocks cut because one task's outputs would outgrow
    # their workspace (KG over GEMM_STREAM_C_BYTES / (8 panels of pixels): 700 > 336 floats).
    "K13_reduction_2250": Case(1, 250, 5, 5, 13, 3, 3),
    "K21_many_pixel_blocks_N50": Case(50, 3, 5, 5, 21, 3, 3, padding=1),
    "K3000_filter_tasks": Case(1, 2, 3, 3, 3000, 1, 1, bias=False),
    "K700_filter_blocks_cut_by_workspace": Case(20, 2, 5, 5, 700, 1, 1),
    "groups_2_K1402_filter_blocks_cut": Case(20, 4, 7, 7, 1402, 3, 3, groups=2, padding=1),
    "groups_3_stride_2_dilation_2": Case(4, 9, 9, 8, 30, 3, 2, stride=2, dilation=2, groups=3,
                                         padding=1),
    # At most GEMM_FEW_PIXELS pixels over the batch: the few-pixel kernel where the path has
    # one (AVX2): 16- or 8-row blocks with a partial last one, tap counts that are no multiple
    # of 8 (a partial last transpose), reductions past one GEMM_STREAM_TAPS block, 1-4 pixels.
    "few_pixels_Q1_K37_reduction_2250": Case(1, 250, 3, 3, 37, 3, 3),
    "few_pixels_Q2_stride_3": Case(2, 5, 5, 5, 17, 3, 3, stride=3),
    "few_pixels_Q3_N3_K19": Case(3, 20, 3, 3, 19, 3, 3),
    "few_pixels_Q4_groups_2": Case(1, 6, 4, 4, 42, 3, 3, groups=2),
    "few_pixels_Q1_K29_taps_6": Case(1, 1, 2, 3, 29, 2, 3),
}


def _run_streaming_driver(isa, case, dtype, seed=7, driver="conv2d_im2col_streaming_filters",
                          threads=None, aligned=False):
    """A small-plane driver's result on case (skipped where the ISA has no streaming kernel),
    with the inputs. threads: passed to the driver as is (the public calls give small layers
    one thread). aligned: x and y start on a cache line (otherwise wherever NumPy puts them)."""
    from fastconv import _conv, _runtime, conv as conv_module
    from fastconv._geometry import conv2d_geometry, empty_aligned

    if _runtime.kernel_names(isa)["gemm_stream"][np.dtype(dtype).name] is None:
        pytest.skip(f"the {isa} path has no filter-streaming kernel")
    x, w, b = make_inputs(case, dtype, seed)
    x_in, w_in = x, w
    x, w, b_in, geometry, _ = conv2d_geometry("conv2d", x, w, b, case.stride, case.padding,
                                              case.dilation, case.groups)
    y = np.full(geometry.output_shape, np.nan, dtype)
    if aligned:
        x_aligned, y = empty_aligned(x.shape, dtype), empty_aligned(y.shape, dtype)
        x_aligned[...], y[...] = x, np.nan
        x = x_aligned
    arguments = list(conv_module._driver_arguments(geometry))
    if threads is not None:
        arguments[-1] = threads
    getattr(_conv, driver)(x, w, np.zeros(1, dtype) if b is None else b_in, b is not None, y,
                           *arguments)
    return y, x_in, w_in, b


# The small-plane cases are checked against the oracle on the over-batch GEMM, which the
# streaming one equals bit for bit (below); the oracle's loops take seconds on them.
@pytest.mark.parametrize("name", [name for name in STREAMING_CASES
                                  if name not in SMALL_PLANE_CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_streaming_filters_gemm_matches_oracle(isa, dtype, name):
    case = STREAMING_CASES[name]
    y, x, w, b = _run_streaming_driver(isa, case, dtype)
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


@pytest.mark.parametrize("name", list(STREAMING_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_streaming_filters_gemm_equals_the_packed_gemms_bit_for_bit(isa, dtype, name):
    """Same blocks, same order: which GEMM a batch takes never changes an image's bits."""
    case = STREAMING_CASES[name]
    streamed = _run_streaming_driver(isa, case, dtype)[0]
    for driver in ("conv2d_im2col", "conv2d_im2col_over_batch"):
        np.testing.assert_array_equal(
            _run_streaming_driver(isa, case, dtype, driver=driver)[0], streamed)


@pytest.mark.parametrize("name", ["K21_many_pixel_blocks_N50", "few_pixels_Q1_K37_reduction_2250"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_streaming_filters_gemm_is_bit_identical_across_thread_counts(isa, dtype, name):
    case = STREAMING_CASES[name]
    results = [_run_streaming_driver(isa, case, dtype, threads=threads)[0]
               for threads in (1, 2, 3)]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_fc_layer_with_streamed_filters_equals_each_image_alone(isa, restore_threads):
    """End to end through conv2d: filters of 18.9 MB (past GEMM_STREAM_MIN_FILTER_BYTES) on
    1x1 outputs, a batch of 40 (streamed where a kernel exists) against each image alone (1
    pixel: the packed GEMM with AVX-512 float32), on two threads."""
    from fastconv import _conv, conv as conv_module
    from fastconv._geometry import conv2d_geometry

    fastconv.set_num_threads(2)
    case = Case(40, 1024, 3, 3, 512, 3, 3)
    x, w, b = make_inputs(case, np.float32, seed=11)
    geometry = conv2d_geometry("conv2d", x, w, b, 1, 0, 1, 1)[3]
    assert w.nbytes >= _conv.GEMM_STREAM_MIN_FILTER_BYTES
    batch_driver = conv_module._forward_driver("im2col", geometry, w.dtype)
    assert (batch_driver is _conv.conv2d_im2col_streaming_filters) == (isa != "generic")
    y = conv2d(x, w, b, algorithm="im2col")
    for n in (0, 17, 39):
        np.testing.assert_array_equal(conv2d(x[n:n + 1], w, b, algorithm="im2col")[0], y[n])
    # A 3x3 kernel on 3x3 maps: each output is one dot product (the loop oracle takes minutes).
    x64, w64 = x.reshape(40, -1).astype(np.float64), w.reshape(512, -1).astype(np.float64)
    ref = x64 @ w64.T + b
    scale = np.abs(x64) @ np.abs(w64).T + np.abs(b)
    assert_close(y[:, :, 0, 0], ref, scale, np.float32)


@given(N=st.integers(1, 12), CG=st.integers(1, 12), KG=st.integers(1, 40),
       groups=st.integers(1, 2), H=st.integers(1, 9), W=st.integers(1, 9), F=st.integers(1, 4),
       stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from([0, 1, 2, "same"]), bias=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_streaming_filters_gemm_matches_oracle_on_random_geometries(
        isa, N, CG, KG, groups, H, W, F, stride, dilation, padding, bias, dtype, seed):
    case = _drawn_case(N, CG, KG, groups, H, W, F, stride, dilation, padding, bias)
    y, x, w, b = _run_streaming_driver(isa, case, dtype, seed)
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


@given(rows=st.integers(0, 32), extra_columns=st.integers(0, 9), kc=st.integers(1, 40),
       panel=st.sampled_from([4, 6, 8, 14, 16, 32]), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_gemm_pack_is_the_transposed_rows_and_writes_only_its_panel(
        isa, rows, extra_columns, kc, panel, dtype, seed):
    """The k-major pack (8x8 transposes on AVX2, 16x16 on AVX-512) against NumPy's transpose:
    partial row blocks, tap counts and panel widths, and nothing written past kc * panel."""
    from fastconv import _conv, _runtime
    rows = min(rows, panel)
    src = np.random.default_rng(seed).standard_normal((rows, kc + extra_columns)).astype(dtype)
    dst = np.full(kc * panel + 9, 7.0, dtype)
    _conv.pack_kmajor(src, rows, kc, panel, _runtime.ISA_CODES[isa], dst)
    expected = np.zeros((kc, panel), dtype)
    expected[:, :rows] = src[:, :kc].T
    np.testing.assert_array_equal(dst[:kc * panel].reshape(kc, panel), expected)
    assert (dst[kc * panel:] == 7.0).all()


def test_gemm_pack_refuses_rows_past_its_panel(isa):
    from fastconv import _conv, _runtime
    src = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match="pack_kmajor: rows, kc or dst out of range"):
        _conv.pack_kmajor(src, 7, 8, 6, _runtime.ISA_CODES[isa], np.zeros(48, np.float32))


@given(rows=st.integers(1, 16), kc=st.one_of(st.integers(1, 40), st.integers(250, 270)),
       pixels=st.integers(1, 9), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_few_pixel_kernel_adds_its_block_and_reads_and_writes_nothing_else(
        isa, rows, kc, pixels, dtype, seed):
    """The few-pixel micro-kernel alone: c[:rows, :pixels] += w[:rows, :kc] @ b[:kc, :pixels]
    for partial row blocks (both halves of the float kernel's 16), tap tails and reductions
    under one step, and several 4-pixel passes. NaN everywhere else in w and b (a read there
    would show), -0.0 everywhere else in c (a write there, even of a zero row's +0.0 sums,
    would change its sign)."""
    from fastconv import _conv, _runtime
    code = _runtime.ISA_CODES[isa]
    if _runtime.kernel_names(isa)["gemm_few_pixels"][np.dtype(dtype).name] is None:
        pytest.skip(f"the {isa} path has no few-pixel kernel")
    MR = 16 if dtype == np.float32 else 8
    rows = min(rows, MR)
    rng = np.random.default_rng(seed)
    w = np.full((MR, kc + 3), np.nan, dtype)
    w[:rows, :kc] = rng.standard_normal((rows, kc))
    b = np.full((kc + 2, pixels + 2), np.nan, dtype)
    b[:kc, :pixels] = rng.standard_normal((kc, pixels))
    c = np.full((MR + 1, pixels + 3), -0.0, dtype)
    c[:rows, :pixels] = rng.standard_normal((rows, pixels))
    expected = c[:rows, :pixels].astype(np.float64) + (
        w[:rows, :kc].astype(np.float64) @ b[:kc, :pixels].astype(np.float64))
    scale = np.abs(c[:rows, :pixels]) + np.abs(w[:rows, :kc]) @ np.abs(b[:kc, :pixels])
    _conv.gemm_few_pixels(w, rows, kc, b, pixels, code, c)
    assert_close(c[:rows, :pixels], expected, scale, dtype)
    outside = np.ones(c.shape, bool)
    outside[:rows, :pixels] = False
    assert (c[outside] == 0).all() and np.signbit(c[outside]).all()


def test_streaming_driver_gives_few_pixels_the_few_pixel_kernel(isa):
    """Up to GEMM_FEW_PIXELS pixels over the batch take the few-pixel kernel where the path
    has one (AVX2), more take the broadcasting kernel: both give the same bits, so only this
    shows which ran."""
    from fastconv import _conv, _runtime
    code = _runtime.ISA_CODES[isa]
    for single, dtype in ((True, "float32"), (False, "float64")):
        has_kernel = _runtime.kernel_names(isa)["gemm_few_pixels"][dtype] is not None
        assert has_kernel == (isa == "avx2")
        for Q in (1, 4):
            assert _conv.streaming_uses_few_pixel_kernel(Q, code, single) == has_kernel
        assert not _conv.streaming_uses_few_pixel_kernel(5, code, single)   # GEMM_FEW_PIXELS + 1


FC6_AS_CONV = dict(C=512, H=12, W=12, K=4096, FH=7, FW=7, HO=6, WO=6)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_fc_layer_streams_its_filters_where_a_streaming_kernel_exists(isa, dtype):
    """VGG's fc6 as a 7x7 convolution (411 MB of float32 filters) streams its filters on AVX2
    and AVX-512: for 36 pixels (12x12 maps) everywhere, for 1 pixel (7x7 maps) everywhere but
    AVX-512 float32 (where the packed GEMM's 14-pixel rows waste fewer lanes). Small filters
    and planes of 64 pixels or more keep the packed GEMMs."""
    from fastconv import _conv, _runtime, conv as conv_module
    from fastconv._geometry import Conv2dGeometry

    dtype = np.dtype(dtype)
    has_kernel = _runtime.kernel_names(isa)["gemm_stream"][dtype.name] is not None

    def driver(N, **changes):
        geometry = Conv2dGeometry(N=N, **{**FC6_AS_CONV, **changes}, stride=(1, 1),
                                  padding=(0, 0), dilation=(1, 1), groups=1)
        return conv_module._forward_driver("im2col", geometry, dtype)

    streaming, packed = _conv.conv2d_im2col_streaming_filters, _conv.conv2d_im2col_over_batch
    assert driver(1) is (streaming if has_kernel else packed)
    assert driver(1, H=7, W=7, HO=1, WO=1) is (
        streaming if has_kernel and (isa, dtype) != ("avx512", np.float32) else packed)
    assert driver(1, K=64) is packed
    assert driver(1, H=20, W=20, HO=14, WO=14) is _conv.conv2d_im2col


# ---------------------------------------------------------------------------------------------
# 1x1 layers: the GEMM on x in place (fastconv._conv.conv2d_pointwise)
# ---------------------------------------------------------------------------------------------

POINTWISE_CASES = {
    # Planes that end in a partial panel of pixels (AVX-512: 48 floats or 24 doubles wide;
    # AVX2: 24 or 12), filter counts that end in a partial block (8 or 4 rows), reductions over
    # several 256-tap blocks, several pixel blocks per plane, groups, and one image whose tasks
    # split its filters.
    "C300_K21_partial_panel_and_filter_block": Case(2, 300, 9, 11, 21, 1, 1),
    "C600_K13_three_reduction_blocks": Case(1, 600, 8, 9, 13, 1, 1, bias=False),
    # Without a bias the first block's sums are stored, partial tiles included.
    "C40_K13_no_bias_partial_tiles": Case(2, 40, 7, 11, 13, 1, 1, bias=False),
    # One reduction block, no bias, planes of whole cache lines (96 pixels): the full tiles'
    # sums are y's final values and are stored past the caches.
    "C24_K20_no_bias_streamed_stores": Case(2, 24, 8, 12, 20, 1, 1, bias=False),
    "panels_exactly_K16": Case(1, 40, 12, 16, 16, 1, 1),
    "many_pixel_blocks_N3": Case(3, 16, 40, 41, 24, 1, 1),
    "groups_3_K5_per_group": Case(3, 12, 8, 10, 15, 1, 1, groups=3),
    "one_image_filter_tasks_K64": Case(1, 8, 8, 8, 64, 1, 1),
}


@pytest.mark.parametrize("name", list(POINTWISE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_pointwise_gemm_matches_oracle_and_the_packed_gemm_bit_for_bit(isa, dtype, name):
    """Its sums are conv2d_im2col's (bias, then 256-tap blocks in order), so "im2col" gives the
    same bits whichever GEMM runs it."""
    case = POINTWISE_CASES[name]
    # Streamed stores need y's rows on whole cache lines: with x aligned too, no panel shifts.
    aligned = name.endswith("streamed_stores")
    y, x, w, b = _run_streaming_driver(isa, case, dtype, driver="conv2d_pointwise",
                                       aligned=aligned)
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())
    np.testing.assert_array_equal(
        _run_streaming_driver(isa, case, dtype, driver="conv2d_im2col", aligned=aligned)[0], y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_pointwise_gemm_is_bit_identical_across_thread_counts(isa, dtype):
    for case in (POINTWISE_CASES["many_pixel_blocks_N3"],
                 POINTWISE_CASES["one_image_filter_tasks_K64"]):
        results = [_run_streaming_driver(isa, case, dtype, driver="conv2d_pointwise",
                                         threads=threads)[0] for threads in (1, 2, 3)]
        np.testing.assert_array_equal(results[0], results[1])
        np.testing.assert_array_equal(results[0], results[2])


@given(N=st.integers(1, 3), CG=st.integers(1, 40), KG=st.integers(1, 40),
       groups=st.integers(1, 2), H=st.integers(1, 12), W=st.integers(1, 12),
       bias=st.booleans(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_pointwise_gemm_matches_oracle_on_random_geometries(isa, N, CG, KG, groups, H, W, bias,
                                                            dtype, seed):
    case = _drawn_case(N, CG, KG, groups, H, W, 1, 1, 1, 0, bias)
    y, x, w, b = _run_streaming_driver(isa, case, dtype, seed, driver="conv2d_pointwise")
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_pointwise_gemm_on_inputs_at_every_offset_in_a_cache_line(isa, dtype):
    """Planes of a whole number of cache lines start their panels on x's line boundaries, after
    a partial first panel; the results must not depend on where x starts."""
    from fastconv import _conv, _runtime, conv as conv_module
    from fastconv._geometry import conv2d_geometry

    if _runtime.kernel_names(isa)["gemm_stream"][np.dtype(dtype).name] is None:
        pytest.skip(f"the {isa} path has no streaming kernel")
    # A plane of 192 pixels (several panels), one of 16 (smaller than a panel), groups.
    for case in (Case(2, 20, 12, 16, 11, 1, 1), Case(3, 12, 4, 4, 9, 1, 1, groups=3)):
        x, w, b = make_inputs(case, dtype, seed=9)
        geometry = conv2d_geometry("conv2d", x, w, b, 1, 0, 1, case.groups)[3]
        line = 64 // np.dtype(dtype).itemsize
        results = []
        for offset in range(line):
            buffer = np.empty(x.size + 2 * line, dtype)
            start = (-buffer.ctypes.data % 64) // buffer.itemsize + offset
            shifted = buffer[start:start + x.size].reshape(x.shape)
            shifted[...] = x
            y = np.full(geometry.output_shape, np.nan, dtype)
            _conv.conv2d_pointwise(shifted, w, b, True, y,
                                   *conv_module._driver_arguments(geometry))
            results.append(y)
        assert_matches_reference(results[0], x, w, b, groups=case.groups)
        for y in results[1:]:
            np.testing.assert_array_equal(y, results[0])


# Strided 1x1 layers (ResNet's downsampling shortcuts) on subsampled planes of 64 pixels or more.
STRIDED_POINTWISE_CASES = {
    "stride_2_odd_planes": Case(3, 20, 17, 19, 24, 1, 1, stride=2),
    "stride_2x3_groups_2": Case(2, 16, 24, 25, 12, 1, 1, stride=(2, 3), groups=2),
    "stride_3_no_bias": Case(2, 8, 25, 26, 10, 1, 1, stride=3, bias=False),
}


@pytest.mark.parametrize("name", list(STRIDED_POINTWISE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_strided_1x1_layers_equal_the_same_layer_on_their_subsampled_input(isa, dtype, name,
                                                                           monkeypatch):
    """Where the pointwise GEMM exists, "auto" runs such a layer as that GEMM on every SH-th row
    and SW-th column, copied a chunk of images at a time: the oracle's values, and the bits of
    the unit-stride layer on the subsampled input, whatever the chunk and x's layout."""
    from fastconv import _runtime, conv as conv_module

    case = STRIDED_POINTWISE_CASES[name]
    SH, SW = (case.stride, case.stride) if isinstance(case.stride, int) else case.stride
    x, w, b = make_inputs(case, dtype, seed=3)
    y = conv2d(x, w, b, **case.conv_kwargs())
    if _runtime.kernel_names(isa)["gemm_stream"][np.dtype(dtype).name] is not None:
        assert fastconv.last_algorithm() == "im2col"
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())
    subsampled = np.ascontiguousarray(x[:, :, ::SH, ::SW])
    np.testing.assert_array_equal(conv2d(subsampled, w, b, groups=case.groups,
                                         algorithm="im2col"), y)
    monkeypatch.setattr(conv_module, "STRIDED_POINTWISE_CHUNK_BYTES", 1)  # one image a chunk
    np.testing.assert_array_equal(conv2d(np.asfortranarray(x), w, b, **case.conv_kwargs(),
                                         algorithm="im2col"), y)


def test_pointwise_gemm_refuses_other_geometries_and_isas_without_its_kernel():
    from fastconv import _config, _conv, _runtime

    x, w = np.ones((1, 4, 9, 9), np.float32), np.ones((8, 4, 1, 1), np.float32)
    y, bias = np.empty((1, 8, 9, 9), np.float32), np.zeros(1, np.float32)
    for isa in _config.available_isas():
        code = _runtime.ISA_CODES[isa]
        if _runtime.kernel_names(isa)["gemm_stream"]["float32"] is None:
            with pytest.raises(ValueError, match="no streaming kernel"):
                _conv.conv2d_pointwise(x, w, bias, False, y, 1, 1, 1, 0, 0, 1, 1, code, 1)
            continue
        for SH, PH in ((2, 0), (1, 1)):
            with pytest.raises(ValueError, match="1x1 filters, unit stride, no padding"):
                _conv.conv2d_pointwise(x, w, bias, False, y, 1, SH, SH, PH, PH, 1, 1, code, 1)
        with pytest.raises(ValueError, match="1x1 filters"):
            _conv.conv2d_pointwise(x, np.ones((8, 4, 3, 3), np.float32), bias, False, y, 1, 1,
                                   1, 0, 0, 1, 1, code, 1)
        with pytest.raises(ValueError, match="planes 9x9 -> 10x10"):
            _conv.conv2d_pointwise(x, w, bias, False, np.empty((1, 8, 10, 10), np.float32), 1,
                                   1, 1, 0, 0, 1, 1, code, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("line_offset", [0, 16, 48])
def test_pointwise_output_starts_where_the_input_does_in_its_cache_line(isa, dtype, line_offset):
    """So that both are read and written in whole lines (and y's final tiles stored past the
    caches): NumPy puts large arrays 16 bytes past a line. Any other offset gives the same
    values."""
    from fastconv._geometry import empty_aligned

    case = Case(2, 16, 8, 8, 20, 1, 1, bias=False)
    x0, w, _ = make_inputs(case, dtype, seed=3)
    x = empty_aligned(x0.shape, dtype, line_offset)
    x[...] = x0
    y = conv2d(x, w, algorithm="im2col")
    assert_matches_reference(y, x, w, None)
    from fastconv import _runtime
    if _runtime.kernel_names(isa)["gemm_stream"][np.dtype(dtype).name] is not None:
        assert y.ctypes.data % 64 == line_offset


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_1x1_layers_run_the_pointwise_gemm_where_a_streaming_kernel_exists(isa, dtype):
    """auto takes it for 1x1 layers without padding, with more than 4 filters per group and
    planes of 64 pixels or more (subsampled at a stride); the rest keep their drivers."""
    from fastconv import _conv, _runtime, conv as conv_module
    from fastconv._geometry import conv2d_geometry

    has_kernel = _runtime.kernel_names(isa)["gemm_stream"][np.dtype(dtype).name] is not None

    def chosen(N, C, H, W, K, F=1, stride=1, padding=0, groups=1):
        x, w = np.zeros((N, C, H, W), dtype), np.zeros((K, C // groups, F, F), dtype)
        geometry = conv2d_geometry("conv2d", x, w, None, stride, padding, 1, groups)[3]
        algorithm = conv_module.choose_algorithm(geometry, np.dtype(dtype))
        return algorithm, conv_module._forward_driver(algorithm, geometry, np.dtype(dtype))

    pointwise = ("im2col", _conv.conv2d_pointwise) if has_kernel else ("direct",
                                                                      _conv.conv2d_direct)
    assert chosen(2, 256, 56, 56, 64) == pointwise
    assert chosen(1, 16, 8, 8, 10, groups=2) == pointwise
    # Small planes: the GEMM over the batch, or direct where its tiles wrap (AVX2, portable).
    assert chosen(2, 256, 7, 7, 64)[1] is (_conv.conv2d_im2col_over_batch if isa == "avx512"
                                           else _conv.conv2d_direct)
    # Strided: the GEMM on the subsampled input (10x10 here), where it has 64 pixels or more.
    assert chosen(2, 16, 20, 20, 8, stride=2)[0] == pointwise[0]
    assert chosen(2, 16, 14, 14, 8, stride=2)[1] is _conv.conv2d_direct
    assert chosen(2, 16, 20, 20, 8, padding=1)[1] is _conv.conv2d_direct
    assert chosen(2, 16, 20, 20, 8, F=3)[1] is _conv.conv2d_direct
    assert chosen(2, 16, 20, 20, 8, groups=4)[1] is _conv.conv2d_direct
    x = np.random.default_rng(3).standard_normal((2, 16, 8, 8)).astype(dtype)
    w = np.random.default_rng(4).standard_normal((8, 16, 1, 1)).astype(dtype)
    y = conv2d(x, w)
    assert fastconv.last_algorithm() == pointwise[0]
    assert_matches_reference(y, x, w)


# ---------------------------------------------------------------------------------------------
# Direct convolution with the filters along the vector lanes (fastconv._conv.direct_tile_kind)
# ---------------------------------------------------------------------------------------------

FILTER_TILE_CASES = {
    "K32_12x12_pad1": Case(2, 5, 12, 12, 32, 3, 3, padding=1),
    "K64_stride_2_no_bias": Case(1, 4, 25, 25, 64, 3, 3, stride=2, bias=False),
    "groups_2_K64_pad1": Case(2, 8, 12, 12, 64, 3, 3, padding=1, groups=2),
    "K96_11x11_stride_4_like_alexnet": Case(1, 3, 55, 55, 96, 11, 11, stride=4),
    "K64_dilated_2_pad_2_many_taps": Case(1, 40, 14, 14, 64, 3, 3, padding=2, dilation=2),
    # No padding at unit column stride: where output rows are whole tiles (14 pixels with
    # AVX-512, 6 with AVX2 float32, 4 or 6 elsewhere) the tiles read x itself
    # (fastconv._conv.reads_inside_x). A 1x1 layer on 56x56 maps runs as 7 rows of 448.
    "K64_1x1_56x56_read_from_x": Case(2, 20, 56, 56, 64, 1, 1),
    "K32_valid_3x3_28_wide_rows_read_from_x": Case(2, 6, 9, 30, 32, 3, 3),
    "K32_valid_3x3_12_wide_rows_read_from_x": Case(2, 6, 14, 14, 32, 3, 3),
    "groups_2_K64_valid_read_from_x": Case(2, 8, 9, 30, 64, 3, 3, groups=2),
    # An unread bottom row; 300 channels: several blocks of output rows per image.
    "K32_row_stride_2_dilation_2_read_from_x": Case(1, 5, 22, 32, 32, 3, 3, stride=(2, 1),
                                                    dilation=2, bias=False),
    "K32_C300_row_stride_2_row_blocks_read_from_x": Case(1, 300, 22, 30, 32, 3, 3,
                                                         stride=(2, 1)),
    # "same" with an even kernel pads the bottom and right only, which only HO and WO show:
    # these windows reach past x's last row and column, so the tiles must not read x itself.
    "K32_same_2x2_14x14_pads_bottom_right": Case(1, 16, 14, 14, 32, 2, 2, padding="same"),
    "K32_same_2x2_12x12_pads_bottom_right": Case(2, 5, 12, 12, 32, 2, 2, padding="same"),
    # 7-pixel rows: on every path the tiles wrap from one output row to the next (a block's
    # last tile is partial), from a band, from x itself, and over several row blocks.
    "K32_7x7_pad1_tiles_wrap": Case(2, 10, 7, 7, 32, 3, 3, padding=1),
    "K32_valid_3x3_7_wide_tiles_wrap_read_from_x": Case(2, 6, 9, 9, 32, 3, 3),
    "K48_C400_7_wide_stride_2_tiles_wrap_row_blocks": Case(1, 400, 27, 13, 48, 3, 3, stride=2,
                                                          padding=1),
}


def _case_geometry(case, dtype):
    """The validated geometry fastconv computes for a case's conv2d."""
    from fastconv._geometry import conv2d_geometry
    x, w, b = make_inputs(case, dtype)
    return conv2d_geometry("conv2d", x, w, b, case.stride, case.padding, case.dilation,
                           case.groups)[3]


def _tile_kind(case, dtype, isa):
    from fastconv import _conv, _runtime
    g = _case_geometry(case, dtype)
    return _conv.direct_tile_kind(g.K // g.groups, g.W, g.WO, g.FW, g.padding[1],
                                  g.dilation[1], *g.stride, _runtime.ISA_CODES[isa],
                                  np.dtype(dtype) == np.float32)


def test_filter_tile_cases_really_take_the_filter_tiles_on_every_isa():
    for isa in fastconv._config.available_isas():
        kinds = {name: _tile_kind(case, np.float32, isa)
                 for name, case in FILTER_TILE_CASES.items()}
        assert sum(kind == "filters" for kind in kinds.values()) >= 3, (isa, kinds)


def test_tiles_wrap_from_row_to_row_on_every_isa():
    from fastconv import _conv, _runtime
    for isa in fastconv._config.available_isas():
        for dtype in DTYPES:
            for name, case in FILTER_TILE_CASES.items():
                if "tiles_wrap" in name:
                    g = _case_geometry(case, dtype)
                    assert _tile_kind(case, dtype, isa) == "filters", (isa, dtype, name)
                    assert _conv.direct_wrapping_tiles(g.WO, _runtime.ISA_CODES[isa],
                                                       dtype == np.float32), (isa, dtype, name)


def test_named_cases_still_take_the_pixel_vector_tiles_on_every_isa():
    # The filter tiles win most layers (direct_tile_kind); the pixel tiles must still run
    # somewhere in the suite on every path, row by row and with rows end to end.
    for isa in fastconv._config.available_isas():
        kinds = set()
        for case in NAMED_CASES.values():
            g = _case_geometry(case, np.float32)
            if g.K // g.groups > 4:  # fewer filters per group run the row kernel instead
                kinds.add(_tile_kind(case, np.float32, isa))
        assert {"pixels", "flat pixels"} <= kinds, (isa, kinds)


def test_exactly_the_read_from_x_cases_have_windows_inside_x():
    # The premise of the cases named so: the tiles may read x itself for them (where rows are
    # whole tiles), and for no case with padding, given or implied by the output's size.
    from fastconv import _conv
    for name, case in FILTER_TILE_CASES.items():
        g = _case_geometry(case, np.float32)
        inside = _conv.reads_inside_x(g.H, g.W, g.HO, g.WO, g.FH, g.FW, *g.stride, *g.padding,
                                      *g.dilation)
        assert inside == name.endswith("read_from_x"), name


def test_every_isa_and_dtype_runs_some_read_from_x_case_on_x_itself():
    from fastconv import _conv, _runtime
    from fastconv.conv import _pointwise_cut, _recut
    for isa in fastconv._config.available_isas():
        for dtype in DTYPES:
            taken = []
            for name, case in FILTER_TILE_CASES.items():
                g = _case_geometry(case, dtype)
                g = _recut(_pointwise_cut(g, False), g)[0]  # the planes conv2d_direct sees
                if _conv.direct_reads_x(g.K // g.groups, g.H, g.W, g.HO, g.WO, g.FH, g.FW,
                                        *g.stride, *g.padding, *g.dilation,
                                        _runtime.ISA_CODES[isa], dtype == np.float32):
                    taken.append(name)
            assert all(name.endswith("read_from_x") for name in taken), (isa, dtype, taken)
            # Portable float64: where rows are whole 4-pixel filter-vector tiles, the 4-lane
            # pixel vectors are full too, and direct_tile_kind keeps those.
            if (isa, dtype) != ("generic", np.float64):
                assert taken, (isa, dtype)


@pytest.mark.parametrize("name", list(FILTER_TILE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_filter_tiles_match_oracle(isa, dtype, name):
    case = FILTER_TILE_CASES[name]
    _direct_matches_oracle(case, dtype, seed=7)


def _direct_matches_oracle(case, dtype, seed):
    x, w, b = make_inputs(case, dtype, seed)
    y = conv2d(x, w, b, algorithm="direct", **case.conv_kwargs())
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


@given(N=st.integers(1, 2), CG=st.integers(1, 6), KG=st.sampled_from([14, 16, 28, 32, 48, 64]),
       groups=st.integers(1, 2), H=st.integers(1, 20), W=st.integers(1, 33),
       F=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from([0, 1, 2, "same"]), bias=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_direct_tiles_of_many_filters_match_oracle_on_random_geometries(
        isa, N, CG, KG, groups, H, W, F, stride, dilation, padding, bias, dtype, seed):
    _direct_matches_oracle(_drawn_case(N, CG, KG, groups, H, W, F, stride, dilation, padding,
                                       bias), dtype, seed)


# ---------------------------------------------------------------------------------------------
# Direct convolution for groups of at most 4 filters: the single-filter kernel (depthwise layers)
# ---------------------------------------------------------------------------------------------

FEW_FILTER_CASES = {
    # MobileNet-like: 3x3 depthwise at unit stride (flat runs of rows) and at stride 2 (rows of
    # vectors, a partial last vector), 14-wide rows (one vector, two lanes spare with AVX-512).
    "depthwise_14x14_pad1": Case(2, 24, 14, 14, 24, 3, 3, padding=1, groups=24),
    "depthwise_stride_2_37_wide": Case(1, 8, 20, 37, 8, 3, 3, stride=2, padding=1, groups=8),
    "depthwise_7x7_kernel_dilated": Case(1, 4, 23, 19, 4, 7, 7, padding=5, dilation=2, groups=4),
    # A reduction over several kernel calls (70 channels x 9 taps = 630: 252 + 252 + 126).
    "K3_C70_taps_in_three_calls": Case(2, 140, 9, 11, 6, 3, 3, padding=1, groups=2),
    # Rows wider than a band block (several row blocks per image), no padding, no bias.
    "K2_wide_rows_several_blocks_no_bias": Case(1, 600, 12, 300, 2, 3, 3, bias=False),
}


@pytest.mark.parametrize("name", list(FEW_FILTER_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_few_filters_per_group_match_oracle(isa, dtype, name):
    _direct_matches_oracle(FEW_FILTER_CASES[name], dtype, seed=11)


@given(N=st.integers(1, 2), CG=st.integers(1, 5), KG=st.integers(1, 4),
       groups=st.integers(1, 6), H=st.integers(1, 24), W=st.integers(1, 40),
       F=st.integers(1, 5), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from([0, 1, 2, "same"]), bias=st.booleans(),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_few_filters_per_group_match_oracle_on_random_geometries(
        isa, N, CG, KG, groups, H, W, F, stride, dilation, padding, bias, dtype, seed):
    _direct_matches_oracle(_drawn_case(N, CG, KG, groups, H, W, F, stride, dilation, padding,
                                       bias), dtype, seed)


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------

THREAD_CASES = {
    "N3_C20_17x19_K37_pad1": Case(3, 20, 17, 19, 37, 3, 3, padding=1),
    "N3_C20_17x19_K37_stride2_no_bias": Case(3, 20, 17, 19, 37, 3, 3, stride=2, bias=False),
    "depthwise_N3_C20_17x19": Case(3, 20, 17, 19, 20, 3, 3, padding=1, groups=20),
    "N1_C64_9x9_K70_big_reduction": Case(1, 64, 9, 9, 70, 3, 3, padding=1),
    "N9_C6_8x8_K19_few_pixels": Case(9, 6, 8, 8, 19, 3, 3),
    "N2_C5_12x12_K32_filter_tiles": Case(2, 5, 12, 12, 32, 3, 3, padding=1),
}


@pytest.mark.parametrize("name", list(THREAD_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_threads_give_bit_identical_results(isa, restore_threads, algorithm, dtype, name):
    case = THREAD_CASES[name]
    x, w, b = make_inputs(case, dtype, seed=3)
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        assert fastconv.get_num_threads() == threads
        results[threads] = conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
    np.testing.assert_array_equal(results[1], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    assert_matches_reference(results[2], x, w, b, **case.reference_kwargs())


# ---------------------------------------------------------------------------------------------
# Memory layouts and dtypes of the inputs
# ---------------------------------------------------------------------------------------------

LAYOUT_CASE = Case(2, 4, 9, 8, 6, 3, 2, padding=1, groups=2)


def _layouts(x, w, b):
    """(id, x, w, b) variants of the same values in other memory layouts."""
    def strided(a, axis):
        # The same values inside a twice-as-long array along `axis`, viewed with step 2.
        shape = list(a.shape)
        shape[axis] *= 2
        big = np.full(shape, np.nan, a.dtype)
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, 2)
        big[tuple(index)] = a
        return big[tuple(index)]

    def reversed_view(a, axis):
        # The same values, seen through a negative stride along `axis`.
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, -1)
        flipped = np.ascontiguousarray(a[tuple(index)])
        return flipped[tuple(index)]

    def read_only(a):
        a = a.copy()
        a.setflags(write=False)
        return a

    def big_endian(a):
        return a.astype(a.dtype.newbyteorder(">"))

    yield "fortran_order", np.asfortranarray(x), np.asfortranarray(w), b
    yield "strided_width", strided(x, 3), strided(w, 3), strided(b, 0)
    yield "strided_channels", strided(x, 1), strided(w, 0), b
    yield "transposed_view", np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2), \
        np.ascontiguousarray(w.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0), b
    yield "negative_strides_width", reversed_view(x, 3), reversed_view(w, 3), reversed_view(b, 0)
    yield "negative_strides_batch_height", reversed_view(reversed_view(x, 0), 2), \
        reversed_view(w, 2), b
    yield "read_only", read_only(x), read_only(w), read_only(b)
    yield "big_endian", big_endian(x), big_endian(w), big_endian(b)
    yield "big_endian_x_only", big_endian(x), w, b
    yield "offset_into_bigger_batch", np.concatenate([np.full_like(x[:1], np.nan), x])[1:], w, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_any_memory_layout_gives_same_result_and_is_not_modified(algorithm, dtype):
    case = LAYOUT_CASE
    x, w, b = make_inputs(case, dtype, seed=5)
    expected = conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
    assert_matches_reference(expected, x, w, b, **case.reference_kwargs())
    seen = 0
    for layout, xv, wv, bv in _layouts(x, w, b):
        np.testing.assert_array_equal(xv, x)
        np.testing.assert_array_equal(wv, w)
        before = [(a.copy(), a.dtype, a.strides) for a in (xv, wv, bv)]
        y = conv2d(xv, wv, bv, algorithm=algorithm, **case.conv_kwargs())
        assert y.dtype == np.dtype(dtype), layout
        assert y.dtype.isnative, layout
        np.testing.assert_array_equal(y, expected, err_msg=layout)
        for a, (copy, dt, strides) in zip((xv, wv, bv), before):
            assert a.dtype == dt and a.strides == strides, layout
            np.testing.assert_array_equal(a, copy, err_msg=f"{layout}: input modified")
        seen += 1
    assert seen == 10


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_big_endian_float64_inputs_give_native_float64_result(algorithm):
    case = NAMED_CASES["3x3_pad1"]
    x, w, b = make_inputs(case, np.float64)
    y = conv2d(x.astype(">f8"), w.astype(">f8"), b.astype(">f8"), algorithm=algorithm,
               **case.conv_kwargs())
    assert y.dtype == np.float64 and y.dtype.isnative
    assert_matches_reference(y, x, w, b, **case.reference_kwargs())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_inputs_are_never_modified(algorithm):
    case = NAMED_CASES["many_output_tiles"]
    for dtype in DTYPES:
        x, w, b = make_inputs(case, dtype, seed=11)
        copies = [x.copy(), w.copy(), b.copy()]
        conv2d(x, w, b, algorithm=algorithm, **case.conv_kwargs())
        for array, copy in zip((x, w, b), copies):
            np.testing.assert_array_equal(array, copy)


# ---------------------------------------------------------------------------------------------
# Empty problems
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch_gives_empty_result_of_right_shape(algorithm, dtype):
    x = np.zeros((0, 3, 7, 6), dtype)
    w = np.ones((5, 3, 3, 2), dtype)
    y = conv2d(x, w, np.ones(5, dtype), padding=1, stride=(2, 1), algorithm=algorithm)
    assert y.shape == (0, 5, 4, 7) and y.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zero_filters_give_empty_result_of_right_shape(algorithm, dtype):
    x = np.ones((2, 4, 7, 6), dtype)
    w = np.ones((0, 2, 3, 3), dtype)
    y = conv2d(x, w, np.ones(0, dtype), groups=2, algorithm=algorithm)
    assert y.shape == (2, 0, 5, 4) and y.dtype == np.dtype(dtype)
    y = conv2d(x[0], w, groups=2, algorithm=algorithm)  # unbatched
    assert y.shape == (0, 5, 4) and y.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zero_channels_give_the_bias_as_an_empty_sum_would(algorithm, dtype):
    x = np.ones((2, 0, 5, 4), dtype)
    w = np.ones((3, 0, 2, 2), dtype)
    b = np.array([1.5, -2.0, 0.25], dtype)
    y = conv2d(x, w, b, algorithm=algorithm)
    np.testing.assert_array_equal(y, conv2d_reference(x, w, b))
    y = conv2d(x, w, algorithm=algorithm)
    np.testing.assert_array_equal(y, np.zeros((2, 3, 4, 3)))
    assert y.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zero_height_image_with_padding_sees_only_padding(isa, algorithm, dtype):
    # H = 0 with padding 1 and a 1x1 kernel: output rows exist, and every window is padding.
    x = np.ones((1, 2, 0, 3), dtype)
    w = np.ones((4, 2, 1, 1), dtype)
    b = np.arange(4, dtype=dtype)
    y = conv2d(x, w, b, padding=1, algorithm=algorithm)
    assert y.shape == (1, 4, 2, 5) and y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))


# ---------------------------------------------------------------------------------------------
# NaN and Inf
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("groups", [1, 2])
def test_nan_and_inf_propagate_to_exactly_the_windows_containing_them(isa, algorithm, dtype,
                                                                      groups):
    N, C, H, W, K = 2, 4, 11, 12, 6
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (N, C, H, W)).astype(dtype)
    # Weights bounded away from 0, so every tap that sees a NaN/Inf pixel spreads it.
    w = (rng.uniform(0.5, 1.0, (K, C // groups, 3, 2))
         * rng.choice([-1, 1], (K, C // groups, 3, 2))).astype(dtype)
    b = rng.uniform(-1, 1, K).astype(dtype)
    x[0, 1, 4, 5] = np.nan
    x[1, 3, 0, 0] = np.inf
    x[1, 2, 9, 11] = -np.inf
    kwargs = dict(stride=(1, 2), padding=(1, 1), dilation=(2, 1), groups=groups)
    y = conv2d(x, w, b, algorithm=algorithm, **kwargs)

    # Which outputs see which special pixel: the oracle on indicator images with |w|.
    def touched(n, c, h, col):
        indicator = np.zeros((N, C, H, W))
        indicator[n, c, h, col] = 1
        return conv2d_reference(indicator, np.abs(w), **kwargs) > 0

    sees_nan = touched(0, 1, 4, 5)
    sees_pos_inf = touched(1, 3, 0, 0)
    sees_neg_inf = touched(1, 2, 9, 11)
    assert sees_nan.any() and sees_pos_inf.any() and sees_neg_inf.any()
    assert not sees_nan.all()
    assert not (sees_pos_inf & sees_neg_inf).any()  # the two Inf windows do not overlap

    np.testing.assert_array_equal(np.isnan(y), sees_nan)
    np.testing.assert_array_equal(np.isinf(y), sees_pos_inf | sees_neg_inf)
    # The sign of each Inf output is the sign of the one weight that met the Inf pixel.
    for sees, sign, where in ((sees_pos_inf, 1, (1, 3, 0, 0)), (sees_neg_inf, -1, (1, 2, 9, 11))):
        indicator = np.zeros((N, C, H, W))
        indicator[where] = 1
        tap_weight = conv2d_reference(indicator, w, **kwargs)
        np.testing.assert_array_equal(np.sign(y[sees]), sign * np.sign(tap_weight[sees]))
    # Every other output is finite and matches the oracle on the finite pixels.
    clean = ~(sees_nan | sees_pos_inf | sees_neg_inf)
    assert np.all(np.isfinite(y[clean]))
    finite_x = np.where(np.isfinite(x), x, 0)
    ref, scale = reference_and_scale(finite_x, w, b, **kwargs)
    assert np.all(np.abs(y[clean] - ref[clean]) <= RTOL[np.dtype(dtype)] * scale[clean])
    # Spot checks: an output outside every special window stays finite, one inside the NaN
    # window is NaN.
    assert clean[0, 0, -1, -1] and np.isfinite(y[0, 0, -1, -1])
    inside = tuple(np.argwhere(sees_nan)[0])
    assert np.isnan(y[inside])


# ---------------------------------------------------------------------------------------------
# Leftover memory
# ---------------------------------------------------------------------------------------------

def _dirty_the_heap(nbytes):
    """Fill blocks of about `nbytes` with all-ones bytes (a NaN in float32 and in float64) and
    free them, so the next np.empty of that size most likely reuses one of them."""
    for size in (nbytes, nbytes + 64, 2 * nbytes):
        junk = np.full(max(1, size), 0xFF, np.uint8)
        del junk


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", ["3x3_pad1", "no_bias_3x3", "windows_entirely_in_padding_no_bias",
                                  "no_bias_groups_depthwise", "filters_K17",
                                  "no_bias_big_reduction", "padding_same_even_kernel_4x2"])
def test_results_never_depend_on_leftover_memory(isa, algorithm, dtype, name):
    case = NAMED_CASES[name]
    x1, w1, b1 = make_inputs(case, dtype, seed=100)
    x2, w2, b2 = make_inputs(case, dtype, seed=200)
    first = conv2d(x1, w1, b1, algorithm=algorithm, **case.conv_kwargs())
    assert_matches_reference(first, x1, w1, b1, **case.reference_kwargs())
    nbytes = first.nbytes
    del first
    _dirty_the_heap(nbytes)
    second = conv2d(x2, w2, b2, algorithm=algorithm, **case.conv_kwargs())
    assert_matches_reference(second, x2, w2, b2, **case.reference_kwargs())
    # The very same call again, after the heap was dirtied once more, is bit-identical.
    _dirty_the_heap(second.nbytes)
    again = conv2d(x2, w2, b2, algorithm=algorithm, **case.conv_kwargs())
    np.testing.assert_array_equal(again, second)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("channels", [256, 512])
def test_float32_error_on_vgg_sized_reductions_stays_within_1e_6_of_the_output_scale(
        isa, algorithm, channels):
    # A 3x3 layer of 256 or 512 channels sums 2304 or 4608 products per output: summed in one
    # float32 chain the error grows to ~3e-6 of the output's scale; the kernels sum in blocks
    # (PyTorch's oneDNN: ~3e-7).
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((2, channels, 9, 20)).astype(np.float32)
    w = rng.standard_normal((20, channels, 3, 3)).astype(np.float32)
    ref = conv2d_reference(x, w, padding=1)
    y = conv2d(x, w, padding=1, algorithm=algorithm)
    assert np.max(np.abs(y - ref)) / np.max(np.abs(ref)) <= 1e-6


def test_outputs_start_on_a_cache_line_and_behave_like_any_array():
    """conv2d, its gradients and max-pooling allocate their results on 64-byte boundaries
    (NumPy's own are 16-byte aligned), so the kernels' vector stores never straddle lines."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    y = conv2d(x, w)
    dx, dw, db = fastconv.conv2d_backward(np.ones_like(y), x, w)
    pooled, indices = fastconv.max_pool2d(x, 2, return_indices=True)
    results = [y, dx, fastconv.conv_transpose2d(y, w), pooled, indices,
               fastconv.max_pool2d_backward(pooled, indices, x.shape),
               fastconv.avg_pool2d_backward(pooled, x.shape, 2)]
    for result in results:
        assert result.ctypes.data % 64 == 0
        assert result.flags.c_contiguous and result.flags.writeable
    y[...] = 1
    assert np.all(y == 1) and y.sum() == y.size
