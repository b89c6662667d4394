"""The layer classes of fastconv.layers, the loss and the optimiser, one layer at a time:
backward against central finite differences in float64, parameter bookkeeping (the arrays a
Sequential exposes are the layers' own), He initialisation, output_shape against forward, and
validation errors. Whole networks (state dicts, summaries, models, the demo) are in
test_networks.py."""
import re

import numpy as np
import pytest

from fastconv.layers import (
    AvgPool2D, Conv2D, Flatten, Layer, Linear, LPPool2D, MaxPool2D, ReLU, Sequential,
)
from fastconv.losses import softmax_cross_entropy
from fastconv.optim import SGD
from reference import max_pool2d_reference

F64 = np.float64

# Central differences: every layer here is linear (or, for ReLU / max-pool away from kinks and
# ties, piecewise linear) in each input, so the only error of the difference quotient is the
# rounding of the loss, about 1e-16 * |loss| / STEP; LP pooling and the loss add O(STEP**2).
STEP = 1e-5
MAX_RELATIVE_ERROR = 1e-6
# The rounding noise of a difference quotient is absolute (~1e-10 here), so an entry much
# smaller than the typical gradient (~0.1 to 10) can't be checked to 1e-6 relative: entries whose
# analytic and numeric values are both below FLOOR are held to MAX_RELATIVE_ERROR * FLOOR
# absolutely instead (which also covers the entries that must be exactly 0).
FLOOR = 1e-3


def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally, in this order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def relative_error(analytic, numeric):
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), FLOOR)


def sampled_indices(rng, shape, count):
    """Up to `count` distinct multi-indices of an array of `shape` (all of them if fewer)."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def assert_gradients_match_finite_differences(layer, x, seed=0, samples=16):
    """For loss = sum(layer.forward(x) * r) with a fixed random r, dx from layer.backward(r) and
    every layer.grads[key] agree with central differences on sampled entries (in place
    perturbations of x and of layer.params[key])."""
    rng = np.random.default_rng(seed)
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)
    dx = np.array(layer.backward(r.copy()), dtype=F64, copy=True)
    grads = {key: np.array(value, copy=True) for key, value in layer.grads.items()}
    assert set(grads) == set(layer.params)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    targets = [("dx", x, dx)] + [(f"grads[{key!r}]", layer.params[key], grads[key])
                                 for key in sorted(grads)]
    for name, array, analytic in targets:
        assert analytic.shape == array.shape, f"{name}: shape {analytic.shape}, not {array.shape}"
        assert np.all(np.isfinite(analytic)), f"{name}: non-finite gradient"
        for index in sampled_indices(rng, array.shape, samples):
            original = array[index]
            array[index] = original + STEP
            plus = loss()
            array[index] = original - STEP
            minus = loss()
            array[index] = original
            numeric = (plus - minus) / (2 * STEP)
            error = relative_error(analytic[index], numeric)
            assert error < MAX_RELATIVE_ERROR, (
                f"{name}{tuple(int(i) for i in index)}: backward gives {analytic[index]!r}, "
                f"central differences {numeric!r} (relative error {error:.3g})")


def distinct_values(rng, shape):
    """Values in [-1, 1) that are pairwise at least 2/size apart (>> STEP): max-pooling has no
    ties, even after a finite-difference perturbation."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * (2.0 / size) - 1.0).astype(F64)


# ---------------------------------------------------------------------------------------------
# Backward of each layer against finite differences (float64)
# ---------------------------------------------------------------------------------------------
CONV_CASES = {
    "stride_padding_dilation_groups_bias": (
        dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2),
             dilation=(1, 2), groups=2, bias=True), (2, 4, 9, 8)),
    "stride_with_remainder_no_bias": (
        dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, bias=False), (2, 3, 8, 7)),
    "same_padding_dilated_even_kernel": (
        dict(in_channels=2, out_channels=4, kernel_size=(2, 3), padding="same", dilation=2),
        (1, 2, 6, 5)),
    "depthwise": (
        dict(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6), (2, 6, 5, 5)),
    "pointwise_1x1": (dict(in_channels=5, out_channels=3, kernel_size=1), (3, 5, 4, 4)),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_backward_matches_finite_differences(case):
    kwargs, x_shape = CONV_CASES[case]
    rng = np.random.default_rng(1)
    layer = Conv2D(**kwargs, dtype=F64, seed=2)
    if "bias" in layer.params:
        layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    assert_gradients_match_finite_differences(layer, rng.standard_normal(x_shape))


@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 8, 7)),
    (dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1)), (1, 2, 7, 8)),
], ids=["2x2", "overlapping_padded_ceil_mode", "dilated_non_square"])
def test_max_pool2d_backward_matches_finite_differences_without_ties(kwargs, x_shape):
    x = distinct_values(np.random.default_rng(3), x_shape)
    assert_gradients_match_finite_differences(MaxPool2D(**kwargs), x, samples=40)


@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     (2, 2, 8, 7)),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), divisor_override=5), (1, 2, 7, 5)),
], ids=["2x2", "padded_ceil_mode_excluding_pad", "divisor_override"])
def test_avg_pool2d_backward_matches_finite_differences(kwargs, x_shape):
    x = np.random.default_rng(4).standard_normal(x_shape)
    assert_gradients_match_finite_differences(AvgPool2D(**kwargs), x, samples=40)


@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(kernel_size=2), (2, 3, 6, 6)),
    (dict(kernel_size=(3, 2), stride=(2, 1), ceil_mode=True), (1, 2, 8, 5)),
], ids=["2x2", "non_square_ceil_mode"])
def test_lp_pool2d_with_p2_backward_matches_finite_differences_on_positive_inputs(kwargs,
                                                                                  x_shape):
    x = np.random.default_rng(5).uniform(0.5, 1.5, x_shape)
    assert_gradients_match_finite_differences(LPPool2D(2, **kwargs), x, samples=40)


@pytest.mark.parametrize("p", [float("inf"), -float("inf")], ids=["inf", "minus_inf"])
def test_lp_pool2d_at_infinite_p_backward_matches_finite_differences(p):
    # Magnitudes pairwise apart and away from 0, of either sign: no ties, no kink of |x|.
    rng = np.random.default_rng(8)
    shape = (2, 2, 7, 6)
    x = rng.choice([-1.0, 1.0], shape) * (distinct_values(rng, shape) + 2.0)
    assert_gradients_match_finite_differences(LPPool2D(p, 3, stride=2, ceil_mode=True), x,
                                              samples=40)


def test_relu_backward_matches_finite_differences_away_from_zero():
    rng = np.random.default_rng(6)
    shape = (2, 3, 4, 5)
    x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 1.0, shape)
    assert_gradients_match_finite_differences(ReLU(), x, samples=40)


def test_relu_backward_is_zero_exactly_where_the_input_was_not_positive():
    x = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0]])
    layer = ReLU()
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.full_like(x, 7.0)), [[0, 0, 0, 7.0, 7.0]])


def test_relu_backward_passes_the_gradient_through_nan_as_pytorch():
    # PyTorch's ReLU backward zeroes the gradient where y <= 0, a test NaN fails.
    layer = ReLU()
    layer.forward(np.array([[np.nan, -1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(layer.backward(np.full((1, 4), 3.0)), [[3.0, 0, 0, 3.0]])


def test_relu_refuses_what_is_not_a_float_array():
    with raises(TypeError, "ReLU.forward", "x", "int64"):
        ReLU().forward(np.arange(4).reshape(1, 4))
    with raises(TypeError, "ReLU.forward", "x", "complex128"):
        ReLU().forward(np.ones((1, 4), complex))


def test_relu_backward_refuses_dy_of_another_shape():
    layer = ReLU()
    layer.forward(np.ones((2, 3)))
    with raises(ValueError, "ReLU.backward", "dy", "(2, 3)", "(3, 2)"):
        layer.backward(np.ones((3, 2)))


def test_relu_backward_keeps_dy_dtype():
    layer = ReLU()
    layer.forward(np.array([[-1.0, 2.0]], np.float32))
    dx = layer.backward(np.array([[5.0, 6.0]], np.float32))
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, [[0.0, 6.0]])


@pytest.mark.parametrize("shape", [(), (5,)], ids=["scalar", "1d"])
def test_flatten_refuses_input_without_axes_to_flatten(shape):
    # nn.Flatten (start_dim=1) raises on these too.
    with raises(ValueError, "Flatten.forward", "x", "2 dimensions", str(shape)):
        Flatten().forward(np.ones(shape))


@pytest.mark.parametrize("make", [
    lambda: Conv2D(2, 3, 3, dtype=None), lambda: Linear(2, 3, dtype=None)], ids=["Conv2D", "Linear"])
def test_dtype_none_means_the_default_float32_as_in_pytorch(make):
    assert make().params["weight"].dtype == np.float32


def test_flatten_backward_matches_finite_differences():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5))
    assert_gradients_match_finite_differences(Flatten(), x, samples=40)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_linear_backward_matches_finite_differences(bias):
    rng = np.random.default_rng(8)
    layer = Linear(7, 5, bias=bias, dtype=F64, seed=9)
    if bias:
        layer.params["bias"][...] = rng.standard_normal(5)
    assert_gradients_match_finite_differences(layer, rng.standard_normal((4, 7)))


def small_network(dtype=F64):
    """conv -> relu -> pool -> flatten -> linear, with non-zero biases."""
    net = Sequential(Conv2D(2, 4, 3, padding=1, dtype=dtype, seed=10), ReLU(), MaxPool2D(2),
                     Flatten(), Linear(4 * 3 * 3, 5, dtype=dtype, seed=11))
    rng = np.random.default_rng(12)
    for key, value in net.params.items():
        if key.endswith("bias"):
            value[...] = 0.1 * rng.standard_normal(value.shape)
    return net


def test_sequential_backward_matches_finite_differences_through_the_whole_network():
    net = small_network()
    x = np.random.default_rng(13).standard_normal((2, 2, 6, 6))
    assert set(net.grads) == {"0.weight", "0.bias", "4.weight", "4.bias"}
    assert_gradients_match_finite_differences(net, x, samples=24)


def test_sequential_backward_is_the_layers_backward_in_reverse_order():
    net = small_network()
    x = np.random.default_rng(14).standard_normal((2, 2, 6, 6))
    dy = np.random.default_rng(15).standard_normal((2, 5))
    net.forward(x)
    dx = np.array(net.backward(dy), copy=True)
    # The same chain by hand.
    h = x
    for layer in net.layers:
        h = layer.forward(h)
    g = dy
    for layer in reversed(net.layers):
        g = layer.backward(g)
    np.testing.assert_array_equal(dx, g)


# ---------------------------------------------------------------------------------------------
# Parameter bookkeeping: Sequential exposes the layers' own arrays under PyTorch's keys
# ---------------------------------------------------------------------------------------------
def keyed_network():
    return Sequential(Conv2D(3, 4, 3, seed=0), ReLU(), MaxPool2D(2),
                      Conv2D(4, 2, 1, bias=False, seed=1), Flatten(), Linear(2 * 3 * 3, 3, seed=2))


def test_sequential_keys_are_pytorch_sequential_keys():
    net = keyed_network()
    assert list(net.params) == ["0.weight", "0.bias", "3.weight", "5.weight", "5.bias"]
    assert list(net.grads) == list(net.params)


def test_sequential_params_and_grads_are_the_layers_own_arrays():
    net = keyed_network()
    for key in net.params:
        index, name = key.split(".")
        layer = net[int(index)]
        assert net.params[key] is layer.params[name]
        assert net.grads[key] is layer.grads[name]
        assert net.grads[key].shape == net.params[key].shape
        assert net.grads[key].dtype == net.params[key].dtype


def test_backward_fills_the_same_grad_arrays_in_place():
    net = keyed_network()
    before = {key: value for key, value in net.grads.items()}
    x = np.random.default_rng(16).standard_normal((2, 3, 8, 8)).astype(np.float32)
    net.backward(np.ones_like(net.forward(x)))
    for key, value in net.grads.items():
        assert value is before[key]
        assert value is net[int(key.split(".")[0])].grads[key.split(".")[1]]
        assert np.any(value != 0), f"{key}: gradient left at zero"


def test_sgd_step_on_sequential_params_updates_the_layers_own_arrays():
    net = keyed_network()
    x = np.random.default_rng(17).standard_normal((2, 3, 8, 8)).astype(np.float32)
    net.backward(np.ones_like(net.forward(x)))
    weight = net[0].params["weight"]
    expected = {key: value - np.float32(0.1) * net.grads[key] for key, value in net.params.items()}
    SGD(net.params, net.grads, lr=0.1).step()
    assert net[0].params["weight"] is weight
    for key in net.params:
        index, name = key.split(".")
        np.testing.assert_allclose(net[int(index)].params[name], expected[key], rtol=1e-6,
                                   atol=1e-7)


def test_parameter_count_is_the_sum_of_parameter_sizes():
    net = keyed_network()
    assert net.parameter_count() == (4 * 3 * 9 + 4) + (2 * 4) + (3 * 18 + 3)
    assert ReLU().parameter_count() == 0


# ---------------------------------------------------------------------------------------------
# He initialisation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda seed: Conv2D(8, 16, 3, groups=2, seed=seed),
    lambda seed: Linear(50, 20, seed=seed),
], ids=["Conv2D", "Linear"])
def test_he_initialisation_is_reproducible_with_the_seed(make):
    a, b, c = make(123), make(123), make(124)
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    assert not np.array_equal(a.params["weight"], c.params["weight"])


@pytest.mark.parametrize("make, fan_in", [
    (lambda: Conv2D(64, 128, 3, seed=0), 64 * 9),
    (lambda: Conv2D(256, 512, 3, groups=4, seed=0), 64 * 9),
    (lambda: Conv2D(32, 256, (2, 5), dtype=F64, seed=0), 32 * 10),
    (lambda: Linear(1000, 300, seed=0), 1000),
], ids=["conv", "grouped_conv", "non_square_conv_float64", "linear"])
def test_he_initialisation_has_std_sqrt_2_over_fan_in_and_zero_bias(make, fan_in):
    layer = make()
    weight = layer.params["weight"]
    # >= 70,000 samples: the sample std is within ~0.3% (one sigma) of the true std.
    assert weight.size >= 70_000
    expected = np.sqrt(2.0 / fan_in)
    assert abs(weight.std() / expected - 1) < 0.02, (weight.std(), expected)
    assert abs(weight.mean()) < 0.02 * expected
    np.testing.assert_array_equal(layer.params["bias"], 0)
    assert layer.params["bias"].dtype == weight.dtype == layer.dtype


def test_layers_default_to_float32_parameters_and_zero_grads():
    for layer in (Conv2D(3, 4, 3, seed=0), Linear(5, 2, seed=0)):
        for key in layer.params:
            assert layer.params[key].dtype == np.float32
            assert layer.grads[key].dtype == np.float32
            np.testing.assert_array_equal(layer.grads[key], 0)


# ---------------------------------------------------------------------------------------------
# output_shape agrees with forward
# ---------------------------------------------------------------------------------------------
SHAPE_CASES = {
    "conv_same_dilated_even_kernel": (
        lambda: Conv2D(3, 5, (4, 3), padding="same", dilation=(1, 2), seed=0), (3, 9, 8)),
    "conv_stride_with_remainder_padded": (
        lambda: Conv2D(3, 5, 3, stride=(3, 2), padding=(2, 1), seed=0), (3, 10, 11)),
    "conv_valid_grouped": (lambda: Conv2D(4, 8, 5, padding="valid", groups=4, seed=0), (4, 7, 9)),
    "conv_dilated_strided": (lambda: Conv2D(2, 3, 3, stride=2, dilation=3, seed=0), (2, 13, 12)),
    "maxpool_ceil_mode": (lambda: MaxPool2D(3, stride=2, ceil_mode=True), (2, 8, 8)),
    "maxpool_padded_ceil_mode": (
        lambda: MaxPool2D(3, stride=2, padding=1, ceil_mode=True), (2, 9, 10)),
    "maxpool_ceil_mode_last_window_in_padding": (
        lambda: MaxPool2D(2, stride=2, padding=1, ceil_mode=True), (1, 5, 6)),
    "maxpool_dilated": (lambda: MaxPool2D(2, dilation=2), (1, 9, 9)),
    "avgpool_padded_ceil_mode": (
        lambda: AvgPool2D(3, stride=2, padding=1, ceil_mode=True), (2, 10, 7)),
    "avgpool_non_square": (lambda: AvgPool2D((2, 4), stride=(1, 3)), (1, 5, 11)),
    "lppool_ceil_mode": (lambda: LPPool2D(2, 3, stride=2, ceil_mode=True), (2, 8, 9)),
    "relu": (ReLU, (3, 4, 5)),
    "flatten": (Flatten, (3, 4, 5)),
    "sequential": (
        lambda: Sequential(Conv2D(3, 6, 5, padding="same", seed=0), ReLU(),
                           MaxPool2D(3, 2, ceil_mode=True), Conv2D(6, 4, 3, stride=2, seed=1),
                           AvgPool2D(2, ceil_mode=True), Flatten(), Linear(4 * 2 * 2, 7, seed=2)),
        (3, 17, 15)),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_output_shape_is_the_shape_forward_returns(case):
    make, input_shape = SHAPE_CASES[case]
    layer = make()
    x = np.random.default_rng(18).uniform(0.1, 1.0, (2,) + input_shape).astype(np.float32)
    assert layer.output_shape(input_shape) == layer.forward(x).shape[1:]


def test_linear_output_shape_is_the_shape_forward_returns_and_checks_the_feature_count():
    layer = Linear(60, 7, seed=0)
    x = np.zeros((3, 60), np.float32)
    assert layer.output_shape((60,)) == layer.forward(x).shape[1:] == (7,)
    assert layer.output_shape((3, 4, 5)) == (7,)  # a volume of 60 numbers, flattened
    with raises(ValueError, "Linear", "60"):
        layer.output_shape((3, 4, 4))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: Conv2D(1, 1, 1), lambda: MaxPool2D(2), lambda: AvgPool2D(2), lambda: LPPool2D(2, 2),
    ReLU, Flatten, lambda: Linear(2, 2),
    lambda: Sequential(Conv2D(1, 1, 1), ReLU()),
], ids=["Conv2D", "MaxPool2D", "AvgPool2D", "LPPool2D", "ReLU", "Flatten", "Linear",
        "Sequential"])
def test_backward_before_forward_raises_runtime_error(make):
    layer = make()
    with raises(RuntimeError, "backward", "forward must run first"):
        layer.backward(np.ones((1, 1, 1, 1), np.float32))


CONSTRUCTOR_ERRORS = [
    (lambda: Conv2D(0, 4, 3), ValueError, ("Conv2D", "in_channels", "0")),
    (lambda: Conv2D(3, 0, 3), ValueError, ("Conv2D", "out_channels", "0")),
    (lambda: Conv2D(3.0, 4, 3), TypeError, ("Conv2D", "in_channels", "3.0")),
    (lambda: Conv2D(3, 4, 0), ValueError, ("Conv2D", "kernel_size", "0")),
    (lambda: Conv2D(3, 4, 3, groups=0), ValueError, ("Conv2D", "groups", "0")),
    (lambda: Conv2D(3, 4, 3, groups=2), ValueError, ("Conv2D", "groups", "3")),
    (lambda: Conv2D(4, 6, 3, groups=4), ValueError, ("Conv2D", "groups", "4")),
    (lambda: Conv2D(3, 4, 3, stride=0), ValueError, ("Conv2D", "stride", "0")),
    (lambda: Conv2D(3, 4, 3, stride=1.5), TypeError, ("Conv2D", "stride", "1.5")),
    (lambda: Conv2D(3, 4, 3, padding=-1), ValueError, ("Conv2D", "padding", "-1")),
    (lambda: Conv2D(3, 4, 3, padding="full"), ValueError, ("Conv2D", "padding", "'full'")),
    (lambda: Conv2D(3, 4, 3, padding="same", stride=2), ValueError, ("Conv2D", "stride")),
    (lambda: Conv2D(3, 4, 3, dilation=0), ValueError, ("Conv2D", "dilation", "0")),
    (lambda: Conv2D(3, 4, 3, dtype=np.int32), TypeError, ("Conv2D", "dtype", "int32")),
    (lambda: MaxPool2D(0), ValueError, ("MaxPool2D", "kernel_size", "0")),
    (lambda: MaxPool2D(2, stride=0), ValueError, ("MaxPool2D", "stride", "0")),
    (lambda: MaxPool2D(2, padding=2), ValueError, ("MaxPool2D", "padding", "2")),
    (lambda: MaxPool2D(2, dilation=0), ValueError, ("MaxPool2D", "dilation", "0")),
    (lambda: MaxPool2D(2, ceil_mode=1), TypeError, ("MaxPool2D", "ceil_mode", "1")),
    (lambda: AvgPool2D(0), ValueError, ("AvgPool2D", "kernel_size", "0")),
    (lambda: AvgPool2D(3, stride=-1), ValueError, ("AvgPool2D", "stride", "-1")),
    (lambda: AvgPool2D(2, padding=2), ValueError, ("AvgPool2D", "padding", "2")),
    (lambda: AvgPool2D(2, ceil_mode="no"), TypeError, ("AvgPool2D", "ceil_mode", "'no'")),
    (lambda: LPPool2D(0, 2), ValueError, ("LPPool2D", "norm_type", "0")),
    (lambda: LPPool2D("2", 2), TypeError, ("LPPool2D", "norm_type", "'2'")),
    (lambda: LPPool2D(float("nan"), 2), ValueError, ("LPPool2D", "norm_type", "nan")),
    (lambda: LPPool2D(2, 0), ValueError, ("LPPool2D", "kernel_size", "0")),
    (lambda: LPPool2D(2, 2, stride=0), ValueError, ("LPPool2D", "stride", "0")),
    (lambda: Linear(0, 3), ValueError, ("Linear", "in_features", "0")),
    (lambda: Linear(3, 0), ValueError, ("Linear", "out_features", "0")),
    (lambda: Linear(3.5, 2), TypeError, ("Linear", "in_features", "3.5")),
    (lambda: Linear(3, 2, dtype=np.int64), TypeError, ("Linear", "dtype", "int64")),
    (lambda: Sequential(ReLU(), "relu"), TypeError, ("Sequential", "str", "position 1")),
]


@pytest.mark.parametrize("make, exc, fragments", CONSTRUCTOR_ERRORS,
                         ids=[f"{i:02d}-{f[0]}-{f[1]}" for i, (_, _, f) in
                              enumerate(CONSTRUCTOR_ERRORS)])
def test_bad_constructor_arguments_raise_naming_the_argument(make, exc, fragments):
    with raises(exc, *fragments):
        make()


AVG_POOL_OPTION_ERRORS = [
    (dict(divisor_override=0), ValueError, ("divisor_override", "0")),
    (dict(divisor_override=2.5), TypeError, ("divisor_override", "2.5")),
    (dict(count_include_pad="yes"), TypeError, ("count_include_pad", "'yes'")),
]
AVG_POOL_OPTION_IDS = ["zero_divisor_override", "float_divisor_override",
                       "string_count_include_pad"]


@pytest.mark.parametrize("kwargs, exc, fragments", AVG_POOL_OPTION_ERRORS,
                         ids=AVG_POOL_OPTION_IDS)
def test_avg_pool2d_constructor_rejects_bad_divisor_override_and_count_include_pad(
        kwargs, exc, fragments):
    """Like every other argument of every layer, checked when the layer is built (not at the
    first forward, after output_shape() and summary() have accepted the network)."""
    with raises(exc, "AvgPool2D", *fragments):
        AvgPool2D(2, **kwargs)


@pytest.mark.parametrize("kwargs, exc, fragments", AVG_POOL_OPTION_ERRORS,
                         ids=AVG_POOL_OPTION_IDS)
def test_avg_pool2d_forward_rejects_bad_divisor_override_and_count_include_pad(
        kwargs, exc, fragments):
    layer = AvgPool2D(2)
    for name, value in kwargs.items():       # past the constructor, whatever it checks
        setattr(layer, name, value)
    with raises(exc, *fragments):
        layer.forward(np.ones((1, 1, 4, 4), np.float32))


def test_linear_forward_rejects_a_wrong_feature_count():
    layer = Linear(5, 3, seed=0)
    for shape in [(2, 4), (2, 6), (4,), (2, 5, 1), ()]:
        with raises(ValueError, "Linear.forward", "(N, 5) or (5,)", str(shape)):
            layer.forward(np.ones(shape, np.float32))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_one_unbatched_vector_is_the_batch_of_one(bias):
    # nn.Linear takes (in_features,) to (out_features,); backward likewise, same gradients.
    layer = Linear(5, 3, bias=bias, dtype=F64, seed=0)
    x = np.random.default_rng(9).standard_normal(5)
    dy = np.random.default_rng(10).standard_normal(3)
    batched_y = layer.forward(x[np.newaxis])
    batched_dx = layer.backward(dy[np.newaxis])
    batched_grads = {k: v.copy() for k, v in layer.grads.items()}
    y = layer.forward(x)
    assert y.shape == (3,)
    np.testing.assert_array_equal(y, batched_y[0])
    dx = layer.backward(dy)
    assert dx.shape == (5,)
    np.testing.assert_array_equal(dx, batched_dx[0])
    for key, grad in batched_grads.items():
        np.testing.assert_array_equal(layer.grads[key], grad)
    with raises(ValueError, "Linear.backward", "dy", "(out_features,) = (3,)", "(1, 3)"):
        layer.backward(dy[np.newaxis])


def test_linear_on_one_unbatched_vector_matches_finite_differences():
    x = np.random.default_rng(11).standard_normal(6)
    assert_gradients_match_finite_differences(Linear(6, 4, dtype=F64, seed=1), x, samples=6)


@pytest.mark.parametrize("step", ["forward", "backward"])
def test_conv2d_layer_names_the_callers_array_of_another_dtype(step):
    # Audit F6: a float64 x on a float32 layer used to be reported as conv2d's w.
    layer = Conv2D(1, 2, 2, seed=0)
    x = np.ones((1, 1, 3, 3), np.float32)
    if step == "forward":
        with raises(TypeError, "Conv2D.forward: x must have the dtype of weight (float32), "
                    "got float64"):
            layer.forward(x.astype(np.float64))
    else:
        layer.forward(x)
        with raises(TypeError, "Conv2D.backward: dy must have the dtype of weight (float32), "
                    "got float64"):
            layer.backward(np.ones((1, 2, 2, 2)))


def test_linear_forward_rejects_a_dtype_other_than_its_weights():
    with raises(TypeError, "Linear.forward", "float32", "float64"):
        Linear(5, 3, seed=0).forward(np.ones((2, 5), np.float64))


def test_linear_backward_rejects_dy_of_another_dtype_or_shape():
    layer = Linear(4, 2, seed=0)
    layer.forward(np.ones((3, 4), np.float32))
    with raises(TypeError, "Linear.backward", "dy", "float32", "float64"):
        layer.backward(np.ones((3, 2)))
    for shape in [(3, 3), (5, 2), (6,)]:
        with raises(ValueError, "Linear.backward", "dy", "(3, 2)", str(shape)):
            layer.backward(np.ones(shape, np.float32))


@pytest.mark.parametrize("x_shape, kwargs", [
    ((2, 3, 1, 8), dict(kernel_size=2, padding=1, dilation=2)),
    ((3, 6, 1), dict(kernel_size=2, stride=1, padding=1, dilation=(1, 2))),
], ids=["rows", "columns unbatched"])
def test_max_pool_layer_passes_no_gradient_from_windows_wholly_in_the_padding(x_shape, kwargs):
    # Such a window's output is -inf (x is finite here), its index PyTorch's (past the plane,
    # or, for a window wholly in the left padding, another pixel's: max_pool2d_reference).
    # Its output depends on no input, so it passes no gradient; the windows that do hold
    # pixels pass their dy to their argmax.
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    layer = MaxPool2D(**kwargs)
    y = layer.forward(x)
    x4 = x.reshape((-1,) + x.shape[-3:])
    y_reference, indices = max_pool2d_reference(x4, **kwargs)
    np.testing.assert_array_equal(y.reshape(y_reference.shape), y_reference)
    assert np.isneginf(y).any()
    dy = rng.standard_normal(y.shape)
    expected = np.zeros(x4.shape)
    for n, c, ho, wo in np.ndindex(indices.shape):
        if y_reference[n, c, ho, wo] > -np.inf:
            expected[n, c].flat[indices[n, c, ho, wo]] += dy.reshape(indices.shape)[n, c, ho, wo]
    np.testing.assert_array_equal(layer.backward(dy), expected.reshape(x.shape))
    with raises(ValueError, "MaxPool2D.backward", "dy"):
        layer.backward(np.ones((1,) + y.shape))


def test_layers_are_layers():
    for layer in (Conv2D(1, 1, 1), MaxPool2D(2), AvgPool2D(2), LPPool2D(2, 2), ReLU(), Flatten(),
                  Linear(1, 1), Sequential()):
        assert isinstance(layer, Layer)


# ---------------------------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------------------------
def softmax_cross_entropy_direct(scores, labels):
    """The textbook formula in float64 (fine for moderate scores)."""
    scores = np.asarray(scores, F64)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(p[np.arange(n), labels]))
    onehot = np.zeros_like(p)
    onehot[np.arange(n), labels] = 1
    return loss, (p - onehot) / n


def test_softmax_cross_entropy_equals_the_direct_formula():
    rng = np.random.default_rng(19)
    scores = 3 * rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    loss, dscores = softmax_cross_entropy(scores, labels)
    expected_loss, expected_d = softmax_cross_entropy_direct(scores, labels)
    assert isinstance(loss, float)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    assert dscores.dtype == F64
    np.testing.assert_allclose(dscores, expected_d, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(dscores.sum(axis=1), 0, atol=1e-15)


def test_softmax_cross_entropy_keeps_float32():
    rng = np.random.default_rng(20)
    scores = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 1])
    loss, dscores = softmax_cross_entropy(scores, labels)
    expected_loss, expected_d = softmax_cross_entropy_direct(scores, labels)
    assert dscores.dtype == np.float32
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    np.testing.assert_allclose(dscores, expected_d, rtol=1e-5, atol=1e-7)


def test_softmax_of_zeros_gives_log_of_class_count():
    loss, dscores = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(dscores, [[-0.375, 0.125, 0.125, 0.125],
                                         [0.125, 0.125, 0.125, -0.375]], rtol=1e-15)


@pytest.mark.parametrize("dtype", [F64, np.float32])
def test_softmax_cross_entropy_is_stable_for_scores_of_1e4(dtype):
    scores = np.array([[1e4, 0, -1e4], [0, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype)
    labels = np.array([0, 0, 2])
    loss, dscores = softmax_cross_entropy(scores, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(dscores))
    # Row losses: 0, 1e4 + log 2 (two classes at 1e4, the label at 0), log 3.
    assert loss == pytest.approx((1e4 + np.log(2) + np.log(3)) / 3, rel=1e-6)
    np.testing.assert_allclose(dscores, np.array([[0, 0, 0], [-1, 0.5, 0.5],
                                                  [1 / 3, 1 / 3, -2 / 3]]) / 3, atol=1e-7)


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(21)
    scores = 2 * rng.standard_normal((4, 5))
    labels = np.array([1, 4, 0, 1])
    _, dscores = softmax_cross_entropy(scores, labels)
    h = 1e-6
    for index in np.ndindex(scores.shape):
        plus, minus = scores.copy(), scores.copy()
        plus[index] += h
        minus[index] -= h
        numeric = (softmax_cross_entropy(plus, labels)[0]
                   - softmax_cross_entropy(minus, labels)[0]) / (2 * h)
        error = relative_error(dscores[index], numeric)
        assert error < MAX_RELATIVE_ERROR, (index, dscores[index], numeric, error)


@pytest.mark.parametrize("scores, labels, exc, fragments", [
    (np.zeros((2, 5)), np.array([0, 5]), ValueError, ("labels", "[0, 5)", "5")),
    (np.zeros((2, 5)), np.array([-1, 0]), ValueError, ("labels", "[0, 5)", "-1")),
    (np.zeros((2, 5)), np.array([0.0, 1.0]), TypeError, ("labels", "integers", "float64")),
    (np.zeros((2, 5)), np.array([0, 1, 2]), ValueError, ("labels", "(2,)", "(3,)")),
    (np.zeros((2, 5)), np.array([[0], [1]]), ValueError, ("labels", "(2,)", "(2, 1)")),
    (np.zeros(5), np.array([0]), ValueError, ("scores", "2-D", "(5,)")),
    (np.zeros((0, 5)), np.zeros(0, int), ValueError, ("scores", "(0, 5)")),
], ids=["label_too_large", "negative_label", "float_labels", "too_many_labels",
        "2d_labels", "1d_scores", "empty_batch"])
def test_softmax_cross_entropy_rejects_bad_labels_and_scores(scores, labels, exc, fragments):
    with raises(exc, "softmax_cross_entropy", *fragments):
        softmax_cross_entropy(scores, labels)


# ---------------------------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------------------------
def sgd_problem(seed=22):
    rng = np.random.default_rng(seed)
    params = {"0.weight": rng.standard_normal((3, 2, 2, 2)), "0.bias": rng.standard_normal(3),
              "2.weight": rng.standard_normal((4, 5))}
    gradient_steps = [{key: rng.standard_normal(value.shape) for key, value in params.items()}
                      for _ in range(3)]
    return params, gradient_steps


HYPERPARAMETERS = [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.9, 0.01)]
HYPERPARAMETER_IDS = ["plain", "momentum", "weight_decay", "momentum_and_weight_decay"]


@pytest.mark.parametrize("momentum, weight_decay", HYPERPARAMETERS, ids=HYPERPARAMETER_IDS)
def test_sgd_matches_torch_optim_sgd_over_three_steps(momentum, weight_decay):
    torch = pytest.importorskip("torch")
    params, gradient_steps = sgd_problem()
    theirs = {key: torch.tensor(value.copy(), requires_grad=True) for key, value in params.items()}
    torch_sgd = torch.optim.SGD(list(theirs.values()), lr=0.1, momentum=momentum,
                                weight_decay=weight_decay)
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    ours = SGD(params, grads, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for step, gradients in enumerate(gradient_steps):
        for key, g in gradients.items():
            grads[key][...] = g          # in place, as backward fills a network's grads
            theirs[key].grad = torch.tensor(g.copy())
        ours.step()
        torch_sgd.step()
        for key in params:
            np.testing.assert_allclose(params[key], theirs[key].detach().numpy(), rtol=1e-12,
                                       atol=1e-14, err_msg=f"step {step + 1}, {key}")


@pytest.mark.parametrize("momentum, weight_decay", HYPERPARAMETERS, ids=HYPERPARAMETER_IDS)
def test_sgd_matches_the_hand_written_update_over_three_steps(momentum, weight_decay):
    """g = grad + wd * p; v = g on the first step, else momentum * v + g; p -= lr * v."""
    params, gradient_steps = sgd_problem()
    expected = {key: value.copy() for key, value in params.items()}
    velocity = {}
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    ours = SGD(params, grads, lr=0.05, momentum=momentum, weight_decay=weight_decay)
    for step, gradients in enumerate(gradient_steps):
        for key, g in gradients.items():
            grads[key][...] = g
            d = g + weight_decay * expected[key]
            velocity[key] = d if step == 0 else momentum * velocity[key] + d
            expected[key] = expected[key] - 0.05 * (velocity[key] if momentum else d)
        ours.step()
        for key in params:
            np.testing.assert_allclose(params[key], expected[key], rtol=1e-13, atol=1e-15,
                                       err_msg=f"step {step + 1}, {key}")


def test_sgd_updates_float32_params_in_place_keeping_their_dtype():
    p = {"w": np.ones(3, np.float32)}
    g = {"w": np.array([1.0, 2.0, 3.0], np.float32)}
    array = p["w"]
    SGD(p, g, lr=0.5, momentum=0.9, weight_decay=0.1).step()
    assert p["w"] is array and array.dtype == np.float32
    np.testing.assert_allclose(array, 1 - 0.5 * (np.array([1.0, 2.0, 3.0]) + 0.1), rtol=1e-6)


@pytest.mark.parametrize("kwargs, exc, fragments", [
    (dict(lr=-0.1), ValueError, ("lr must be a finite number >= 0", "-0.1")),
    (dict(lr="0.1"), TypeError, ("lr", "'0.1'")),
    (dict(lr=True), TypeError, ("lr", "True")),
    (dict(lr=0.1, momentum=-0.5), ValueError, ("momentum", "-0.5")),
    (dict(lr=0.1, weight_decay=-1e-4), ValueError, ("weight_decay", "-0.0001")),
    (dict(lr=float("nan")), ValueError, ("lr", "nan")),
    (dict(lr=float("inf")), ValueError, ("lr", "inf")),
    (dict(lr=0.1, momentum=float("nan")), ValueError, ("momentum", "nan")),
    (dict(lr=0.1, weight_decay=float("nan")), ValueError, ("weight_decay", "nan")),
    (dict(lr=0.1, momentum=float("inf")), ValueError, ("momentum", "inf")),
], ids=["negative_lr", "string_lr", "bool_lr", "negative_momentum",
        "negative_weight_decay", "nan_lr", "inf_lr", "nan_momentum", "nan_weight_decay",
        "inf_momentum"])
def test_sgd_rejects_bad_hyperparameters(kwargs, exc, fragments):
    with raises(exc, "SGD", *fragments):
        SGD({"w": np.ones(2)}, {"w": np.ones(2)}, **kwargs)


def test_sgd_with_lr_0_leaves_the_parameters_unchanged():
    # As torch.optim.SGD, which accepts lr=0 (e.g. a warm-up schedule's first step).
    p, g = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, 0.25])}
    optimizer = SGD(p, g, lr=0, momentum=0.9, weight_decay=0.1)
    optimizer.step()
    optimizer.step()
    np.testing.assert_array_equal(p["w"], [1.0, -2.0])


def test_sgd_rejects_params_and_grads_with_different_keys():
    with raises(ValueError, "SGD", "same keys", "'b'"):
        SGD({"w": np.ones(2)}, {"w": np.ones(2), "b": np.ones(1)}, lr=0.1)
