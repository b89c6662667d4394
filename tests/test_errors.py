"""Every validation error: its type (TypeError for a wrong type or dtype, ValueError for a wrong
value or shape) and a message that names the function, the argument and the value received."""
import re
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastconv
from fastconv import conv2d, conv_output_size

from reference import conv2d_reference

MAX_PARAMETER = 2**40


def f32(*shape):
    return np.ones(shape, np.float32)


X = f32(2, 4, 6, 6)
W = f32(6, 4, 3, 3)


def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally, in this order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 6), (4,), (), (1, 2, 4, 6, 6)])
def test_x_of_wrong_ndim_is_a_value_error(shape):
    with raises(ValueError, "conv2d: x must be 4-D", "3-D", f"got shape {shape}"):
        conv2d(np.ones(shape, np.float32), W)


@pytest.mark.parametrize("shape", [(6, 4, 3), (4, 3, 3), (1, 6, 4, 3, 3)])
def test_w_of_wrong_ndim_is_a_value_error(shape):
    with raises(ValueError, "conv2d: w must be 4-D", f"got shape {shape}"):
        conv2d(X, np.ones(shape, np.float32))


def test_w_with_an_empty_kernel_is_a_value_error():
    with raises(ValueError, "conv2d: w must have a kernel of at least 1 x 1",
                "got shape (6, 4, 0, 3)"):
        conv2d(X, f32(6, 4, 0, 3))


def test_channel_mismatch_is_a_value_error():
    with raises(ValueError, "conv2d: x must have", "channels, got 4"):
        conv2d(X, f32(6, 3, 3, 3))
    with raises(ValueError, "conv2d: x must have w.shape[1] * groups = 4 channels, got 6"):
        conv2d(f32(1, 6, 6, 6), f32(6, 2, 3, 3), groups=2)
    with raises(ValueError, "conv2d: x must have", "channels, got 3"):
        conv2d(f32(3, 6, 6), W)  # unbatched


def test_channels_not_divisible_by_groups_is_a_value_error():
    with raises(ValueError, "conv2d: x channels must be divisible by groups (3)", "got 4"):
        conv2d(X, f32(6, 1, 3, 3), groups=3)


def test_filters_not_divisible_by_groups_is_a_value_error():
    with raises(ValueError, "conv2d: w.shape[0] (filters) must be divisible by groups (2)",
                "got 5"):
        conv2d(X, f32(5, 2, 3, 3), groups=2)


@pytest.mark.parametrize("shape", [(5,), (7,), (6, 1), (1, 6), ()])
def test_bias_of_wrong_shape_is_a_value_error(shape):
    with raises(ValueError, "conv2d: b must have shape (6,)", f"got {shape}"):
        conv2d(X, W, np.ones(shape, np.float32))


def test_kernel_larger_than_padded_input_is_a_value_error():
    with raises(ValueError, "conv2d:", "kernel height", "= 7", "padded input height", "= 6",
                "larger than the input"):
        conv2d(X, f32(6, 4, 7, 3))
    with raises(ValueError, "conv2d:", "kernel width", "= 9", "padded input width",
                "= 8", "larger than the input"):
        conv2d(X, f32(6, 4, 3, 9), padding=1)
    with raises(ValueError, "conv2d:", "dilated kernel height", "= 7", "padded input height",
                "larger than the input"):
        conv2d(X, W, dilation=3)  # extent 3*(3-1)+1 = 7 > 6


def test_kernel_fitting_only_thanks_to_padding_is_accepted():
    assert conv2d(X, f32(6, 4, 8, 8), padding=1).shape == (2, 6, 1, 1)


# ---------------------------------------------------------------------------------------------
# stride, padding, dilation, groups: values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, shown", [
    ("stride", 0, "0"), ("stride", -1, "-1"), ("stride", (1, 0), "0"), ("stride", (-2, 1), "-2"),
    ("dilation", 0, "0"), ("dilation", (1, 0), "0"), ("dilation", -3, "-3"),
    ("groups", 0, "0"), ("groups", -2, "-2"),
])
def test_stride_dilation_and_groups_below_one_are_value_errors(name, value, shown):
    with raises(ValueError, f"conv2d: {name} must be >= 1, got {shown}"):
        conv2d(X, W, **{name: value})


@pytest.mark.parametrize("value, shown", [(-1, "-1"), ((0, -2), "-2"), ((-1, 1), "-1"),
                                          ([3, -5], "-5")])
def test_negative_padding_is_a_value_error(value, shown):
    with raises(ValueError, f"conv2d: padding must be >= 0, got {shown}"):
        conv2d(X, W, padding=value)


@pytest.mark.parametrize("value", ["full", "SAME", "Valid", "", "same "])
def test_padding_string_other_than_valid_or_same_is_a_value_error(value):
    with raises(ValueError, "conv2d: padding must be", "'valid' or 'same'", f"got {value!r}"):
        conv2d(X, W, padding=value)


@pytest.mark.parametrize("stride, shown", [(2, "(2, 2)"), ((1, 2), "(1, 2)"), ((3, 1), "(3, 1)")])
def test_padding_same_with_stride_above_one_is_a_value_error(stride, shown):
    with raises(ValueError, "conv2d: stride must be 1 when padding='same'", f"got {shown}"):
        conv2d(X, W, stride=stride, padding="same")


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value, shown", [((1, 2, 3), "(1, 2, 3)"),
                                          ((), "()"), ([1, 1, 1], "[1, 1, 1]")])
def test_pair_of_wrong_length_is_a_value_error(name, value, shown):
    with raises(ValueError, f"conv2d: {name} must be an int or a pair of ints", f"got {shown}"):
        conv2d(X, W, **{name: value})


@pytest.mark.parametrize("name, value", [("stride", 2), ("padding", 1), ("dilation", 2)])
def test_one_element_sequence_means_both_axes_as_in_pytorch(name, value):
    expected = conv2d(X, W, **{name: value})
    for sequence in ((value,), [value], np.array([value])):
        np.testing.assert_array_equal(conv2d(X, W, **{name: sequence}), expected)


# ---------------------------------------------------------------------------------------------
# stride, padding, dilation, groups: types
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [1.5, 2.0, True, False, "2", None, (1, 1.5), (True, 1),
                                   (1, "2"), np.float64(1.0), 1 + 0j])
def test_non_int_stride_padding_dilation_are_type_errors(name, value):
    if name == "padding" and isinstance(value, str):
        # A string padding is a value to compare with 'valid'/'same', so a ValueError.
        with raises(ValueError, "conv2d: padding must be", "'valid' or 'same'", "got '2'"):
            conv2d(X, W, padding=value)
        return
    with raises(TypeError, f"conv2d: {name} must be an int or a pair of ints",
                f"got {value!r}"):
        conv2d(X, W, **{name: value})


@pytest.mark.parametrize("value, shown", [(1.5, "1.5"), (True, "True"), ("2", "'2'"),
                                          (None, "None"), ((1, 1), "(1, 1)")])
def test_non_int_groups_is_a_type_error(value, shown):
    with raises(TypeError, "conv2d: groups must be an int", f"got {shown}"):
        conv2d(X, W, groups=value)


@pytest.mark.parametrize("value", [np.int64(2), np.int32(2), np.uint8(2), (np.int64(2), 2),
                                   np.array([2, 2])])
def test_numpy_integers_are_accepted_as_ints(value):
    y = conv2d(X, W, stride=value)
    np.testing.assert_array_equal(y, conv2d(X, W, stride=2))


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------

BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, np.float16,
              np.longdouble, object]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("argument", ["x", "w", "b"])
def test_non_float32_float64_arrays_are_type_errors(argument, dtype):
    if np.dtype(dtype) == np.dtype(np.float64):
        pytest.skip("long double is float64 on this platform")
    arrays = dict(x=X, w=W, b=f32(6))
    arrays[argument] = arrays[argument].astype(dtype)
    with raises(TypeError, f"conv2d: {argument} must be a float32 or float64 array",
                f"got dtype {np.dtype(dtype)}"):
        conv2d(**arrays)


def test_non_array_inputs_of_other_types_are_type_errors():
    with raises(TypeError, "conv2d: x must be a float32 or float64 array", "got dtype <U"):
        conv2d("abc", W)
    with raises(TypeError, "conv2d: x must be a float32 or float64 array", "got dtype int"):
        conv2d([[[[1, 2], [3, 4]]]], f32(1, 1, 1, 1))
    with raises(TypeError, "conv2d: w must be a float32 or float64 array", "got dtype object"):
        conv2d(X, None)


@pytest.mark.parametrize("x_dtype, other_dtype", [(np.float32, np.float64),
                                                  (np.float64, np.float32)])
def test_mixed_float32_float64_are_type_errors(x_dtype, other_dtype):
    x = X.astype(x_dtype)
    xd, od = np.dtype(x_dtype).name, np.dtype(other_dtype).name
    with raises(TypeError, f"conv2d: w must have the dtype of x ({xd})", f"got {od}"):
        conv2d(x, W.astype(other_dtype))
    with raises(TypeError, f"conv2d: b must have the dtype of x ({xd})", f"got {od}"):
        conv2d(x, W.astype(x_dtype), np.ones(6, other_dtype))


# ---------------------------------------------------------------------------------------------
# algorithm
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["fft", "winograd", "Direct", "", "im2col "])
def test_unknown_algorithm_is_a_value_error(value):
    with raises(ValueError, "conv2d: algorithm must be one of auto, direct, im2col",
                f"got {value!r}"):
        conv2d(X, W, algorithm=value)


# ---------------------------------------------------------------------------------------------
# Absurd sizes: refused at once, before anything is allocated
# ---------------------------------------------------------------------------------------------

def _quickly(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_huge_padding_on_a_tiny_image_is_refused_quickly_without_allocating():
    def call():
        with raises(ValueError, "conv2d:", "result", "must fit in memory"):
            conv2d(f32(1, 1, 1, 1), f32(1, 1, 1, 1), padding=10**9)
    assert _quickly(call) < 1.0


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [10**30, 2**40 + 1, 2**63, (1, 10**20)])
def test_parameters_beyond_index_range_are_value_errors(name, value):
    biggest = max(value) if isinstance(value, tuple) else value

    def call():
        with raises(ValueError, f"conv2d: {name} must be <= {MAX_PARAMETER}", f"got {biggest}"):
            conv2d(X, W, **{name: value})
    assert _quickly(call) < 1.0


def test_groups_beyond_index_range_is_a_value_error():
    with raises(ValueError, f"conv2d: groups must be <= {MAX_PARAMETER}", f"got {10**30}"):
        conv2d(X, W, groups=10**30)


def test_huge_dilation_is_a_kernel_larger_than_the_input():
    with raises(ValueError, "conv2d:", "dilated kernel height", "2000000000001",
                "larger than the input"):
        conv2d(X, W, dilation=10**12)


def test_result_larger_than_memory_from_a_zero_stride_view_is_refused():
    # 2**30 images that all share one buffer: x itself costs nothing, its result cannot fit.
    # Refused either for the contiguous copy of x the kernels would need or for the result.
    x = np.lib.stride_tricks.as_strided(np.ones(1, np.float32), (2**30, 4, 6, 6), (0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"conv2d: (the result|a contiguous copy of x) of shape "
                                         r"\(1073741824, [46], [46], [46]\).*must fit in memory"):
        conv2d(x, W)


# ---------------------------------------------------------------------------------------------
# conv_output_size
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, expected", [
    ((224, 3), dict(stride=1, padding=1), 224),
    ((224, 3, 1, 1), {}, 224),
    ((227, 11, 4, 0), {}, 55),
    ((227, 11), dict(stride=4), 55),
    ((10, 3), dict(dilation=2), 6),          # extent 5: 10 - 5 + 1
    ((10, 3), dict(dilation=2, padding=2), 10),
    ((10, 3), dict(stride=2), 4),            # floor(7 / 2) + 1
    ((10, 3), dict(stride=3), 3),            # floor(7 / 3) + 1, with a remainder
    ((5, 5), {}, 1),
    ((1, 1), {}, 1),
    ((1, 3), dict(padding=1, stride=5), 1),
])
def test_conv_output_size_follows_pytorch_floor_rule(args, kwargs, expected):
    assert conv_output_size(*args, **kwargs) == expected
    assert type(conv_output_size(*args, **kwargs)) is int


@given(size=st.integers(1, 12), kernel=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.integers(0, 2), dilation=st.integers(1, 3))
def test_conv_output_size_is_the_shape_conv2d_and_the_oracle_produce(size, kernel, stride,
                                                                     padding, dilation):
    if size + 2 * padding < dilation * (kernel - 1) + 1:
        with raises(ValueError, "conv_output_size:", "larger than the input"):
            conv_output_size(size, kernel, stride, padding, dilation)
        return
    expected = conv_output_size(size, kernel, stride, padding, dilation)
    x = np.ones((1, 1, size, 2), np.float64)
    w = np.ones((1, 1, kernel, 1), np.float64)
    y = conv2d(x, w, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    assert y.shape[2] == expected
    ref = conv2d_reference(x, w, stride=(stride, 1), padding=((padding, padding), (0, 0)),
                           dilation=(dilation, 1))
    assert ref.shape[2] == expected


@pytest.mark.parametrize("kwargs, exc, fragments", [
    # PyTorch's conv2d and pooling refuse an empty plane, even one that padding would fill.
    (dict(size=0, kernel_size=1), ValueError, ("size must be >= 1", "got 0")),
    (dict(size=0, kernel_size=1, padding=1), ValueError, ("size must be >= 1", "got 0")),
    (dict(size=-1, kernel_size=1), ValueError, ("size must be >= 1", "got -1")),
    (dict(size=5, kernel_size=0), ValueError, ("kernel_size must be >= 1", "got 0")),
    (dict(size=5, kernel_size=3, stride=0), ValueError, ("stride must be >= 1", "got 0")),
    (dict(size=5, kernel_size=3, padding=-1), ValueError, ("padding must be >= 0", "got -1")),
    (dict(size=5, kernel_size=3, dilation=0), ValueError, ("dilation must be >= 1", "got 0")),
    (dict(size=2, kernel_size=5), ValueError, ("kernel size", "= 5", "padded input size",
                                               "larger than the input")),
    (dict(size=5, kernel_size=3, dilation=3), ValueError, ("kernel size", "= 7",
                                                           "larger than the input")),
    (dict(size=10**30, kernel_size=1), ValueError, (f"size must be <= {MAX_PARAMETER}",
                                                    f"got {10**30}")),
    (dict(size=5, kernel_size=1, stride=10**30), ValueError,
     (f"stride must be <= {MAX_PARAMETER}",)),
    (dict(size=5.0, kernel_size=3), TypeError, ("size must be an int", "got 5.0")),
    (dict(size=True, kernel_size=1), TypeError, ("size must be an int", "got True")),
    (dict(size=5, kernel_size=1.5), TypeError, ("kernel_size must be an int", "got 1.5")),
    (dict(size=5, kernel_size=3, stride="2"), TypeError, ("stride must be an int", "got '2'")),
    (dict(size=5, kernel_size=3, padding=(1, 1)), TypeError,
     ("padding must be an int", "got (1, 1)")),
    (dict(size=5, kernel_size=3, dilation=None), TypeError,
     ("dilation must be an int", "got None")),
])
def test_conv_output_size_errors(kwargs, exc, fragments):
    with raises(exc, "conv_output_size: ", *fragments):
        conv_output_size(**kwargs)


# ---------------------------------------------------------------------------------------------
# set_num_threads
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, exc, fragments", [
    (0, ValueError, ("n must be >= 1", "got 0")),
    (-2, ValueError, ("n must be >= 1", "got -2")),
    (10**30, ValueError, (f"n must be <= {MAX_PARAMETER}",)),
    (1.5, TypeError, ("n must be an int", "got 1.5")),
    (2.0, TypeError, ("n must be an int", "got 2.0")),
    (True, TypeError, ("n must be an int", "got True")),
    ("2", TypeError, ("n must be an int", "got '2'")),
])
def test_set_num_threads_rejects_non_positive_and_non_int(restore_threads, value, exc,
                                                          fragments):
    fastconv.set_num_threads(1)
    with raises(exc, "set_num_threads: ", *fragments):
        fastconv.set_num_threads(value)
    assert fastconv.get_num_threads() == 1  # a refused call leaves the setting alone


# ---------------------------------------------------------------------------------------------
# A refused call changes nothing
# ---------------------------------------------------------------------------------------------

def test_refused_calls_do_not_modify_inputs_or_record_an_algorithm():
    x, w, b = X.copy(), W.copy(), np.arange(6, dtype=np.float32)
    conv2d(x, w, b, algorithm="direct")
    assert fastconv.last_algorithm() == "direct"
    for kwargs in (dict(padding=-1), dict(stride=0), dict(groups=4), dict(padding="full")):
        with pytest.raises(ValueError):
            conv2d(x, w, b, algorithm="im2col", **kwargs)
        assert fastconv.last_algorithm() == "direct"
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(w, W)
    np.testing.assert_array_equal(b, np.arange(6))
