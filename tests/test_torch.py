"""fastconv and the oracles against PyTorch itself (skipped when torch is not installed):
conv2d, conv2d_backward (vs autograd), conv_transpose2d, max-pool values and indices (exactly),
average and power-average pooling and all their gradients."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import fastconv

from reference import (
    conv2d_backward_reference, conv2d_reference, conv_transpose2d_reference,
    lp_pool2d_backward_reference, lp_pool2d_reference, same_padding,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = {
    "3x3_pad1_bias": dict(x=(2, 3, 8, 9), w=(4, 3, 3, 3), bias=True, padding=1),
    "stride_2x3_dilation_2x1": dict(x=(1, 4, 13, 12), w=(5, 4, 3, 2), stride=(2, 3),
                                    dilation=(2, 1), padding=(1, 2)),
    "groups_2": dict(x=(2, 6, 7, 7), w=(4, 3, 3, 3), bias=True, groups=2, padding=1),
    "depthwise_K_is_2C": dict(x=(1, 5, 9, 8), w=(10, 1, 3, 3), groups=5, padding="same"),
    "same_even_kernel_4x2": dict(x=(2, 3, 7, 8), w=(5, 3, 4, 2), bias=True, padding="same"),
    "same_dilated_even_kernel": dict(x=(1, 2, 8, 9), w=(3, 2, 2, 4), padding="same",
                                     dilation=(3, 1)),
    "valid_big_reduction": dict(x=(1, 64, 6, 6), w=(33, 64, 3, 3), bias=True, padding="valid"),
    "unbatched": dict(x=(3, 8, 8), w=(4, 3, 3, 3), bias=True, padding=1),
}


def make(name, dtype):
    spec = dict(CASES[name])
    rng = np.random.default_rng(1)
    x = rng.standard_normal(spec.pop("x")).astype(dtype)
    w = rng.standard_normal(spec.pop("w")).astype(dtype)
    b = rng.standard_normal(w.shape[0]).astype(dtype) if spec.pop("bias", False) else None
    return x, w, b, spec


def torch_conv2d(x, w, b, spec):
    return F.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                    None if b is None else torch.from_numpy(b), **spec).numpy()


# torch warns that it copies the input for "same" with an even kernel; that is its business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.mark.parametrize("name", list(CASES))
def test_reference_matches_torch_conv2d(name):
    x, w, b, spec = make(name, np.float64)
    padding = spec.get("padding", 0)
    if padding == "same":
        padding = same_padding(w.shape[2:], spec.get("dilation", 1))
    elif padding == "valid":
        padding = 0
    batched = x if x.ndim == 4 else x[np.newaxis]
    ref = conv2d_reference(batched, w, b, stride=spec.get("stride", 1), padding=padding,
                           dilation=spec.get("dilation", 1), groups=spec.get("groups", 1))
    expected = torch_conv2d(x, w, b, spec)
    np.testing.assert_allclose(ref if x.ndim == 4 else ref[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["direct", "im2col", "auto"])
def test_matches_torch_conv2d(algorithm, dtype, name):
    x, w, b, spec = make(name, dtype)
    y = fastconv.conv2d(x, w, b, algorithm=algorithm, **spec)
    expected = torch_conv2d(x, w, b, spec)
    assert y.shape == expected.shape and y.dtype == expected.dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * np.abs(expected).max())


# ---------------------------------------------------------------------------------------------
# conv2d_backward against torch autograd
# ---------------------------------------------------------------------------------------------

def _tolerance(dtype):
    return 1e-4 if dtype == np.float32 else 1e-11


def assert_close_to_torch(got, expected, dtype, what=""):
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    tol = _tolerance(dtype)
    np.testing.assert_allclose(got, expected, rtol=tol,
                               atol=tol * max(np.abs(expected).max(initial=0), 1e-30),
                               err_msg=what)


def torch_conv2d_gradients(x, w, dy, spec):
    """(dx, dw, db) of F.conv2d(x, w, b, **spec) for the output gradient dy, by autograd."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    wt = torch.from_numpy(w.copy()).requires_grad_()
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    F.conv2d(xt, wt, bt, **spec).backward(torch.from_numpy(dy))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _dy_for(name, dtype):
    x, w, b, spec = make(name, dtype)
    shape = torch_conv2d(x, w, b, spec).shape
    return np.random.default_rng(2).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", [n for n in CASES if len(CASES[n]["x"]) == 4])
def test_backward_reference_matches_torch_autograd(name):
    x, w, _, spec = make(name, np.float64)
    dy = _dy_for(name, np.float64)
    padding = spec.get("padding", 0)
    if padding == "same":
        padding = same_padding(w.shape[2:], spec.get("dilation", 1))
    elif padding == "valid":
        padding = 0
    ref = conv2d_backward_reference(dy, x, w, stride=spec.get("stride", 1), padding=padding,
                                    dilation=spec.get("dilation", 1), groups=spec.get("groups", 1))
    for label, r, t in zip(("dx", "dw", "db"), ref, torch_conv2d_gradients(x, w, dy, spec)):
        np.testing.assert_allclose(r, t, rtol=1e-12, atol=1e-12, err_msg=label)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv2d_backward_matches_torch_autograd(dtype, name):
    x, w, _, spec = make(name, dtype)
    dy = _dy_for(name, dtype)
    grads = fastconv.conv2d_backward(dy, x, w, **spec)
    for label, got, expected in zip(("dx", "dw", "db"), grads,
                                    torch_conv2d_gradients(x, w, dy, spec)):
        assert_close_to_torch(got, expected, dtype, label)


# ---------------------------------------------------------------------------------------------
# conv_transpose2d against F.conv_transpose2d
# ---------------------------------------------------------------------------------------------

TRANSPOSE_CASES = {
    "stride_2_padding_1_output_padding_1_bias": dict(
        x=(2, 4, 5, 6), w=(4, 3, 3, 3), bias=True, stride=2, padding=1, output_padding=1),
    "dilation_2_output_padding_1": dict(x=(1, 3, 5, 5), w=(3, 4, 3, 3), dilation=2,
                                        output_padding=1),
    "groups_2_stride_3x2_dilation_1x2": dict(
        x=(1, 4, 4, 5), w=(4, 2, 3, 2), bias=True, groups=2, stride=(3, 2), padding=(1, 0),
        output_padding=(2, 1), dilation=(1, 2)),
    "depthwise_stride_2": dict(x=(2, 5, 6, 6), w=(5, 1, 3, 3), groups=5, stride=2),
    "nonsquare_kernel_padding": dict(x=(2, 3, 6, 4), w=(3, 2, 2, 5), padding=(0, 2)),
    "unbatched": dict(x=(3, 5, 5), w=(3, 4, 2, 2), bias=True, stride=2),
}


def make_transpose(name, dtype):
    spec = dict(TRANSPOSE_CASES[name])
    rng = np.random.default_rng(3)
    x = rng.standard_normal(spec.pop("x")).astype(dtype)
    w = rng.standard_normal(spec.pop("w")).astype(dtype)
    groups = spec.get("groups", 1)
    b = rng.standard_normal(w.shape[1] * groups).astype(dtype) if spec.pop("bias", False) \
        else None
    return x, w, b, spec


def torch_conv_transpose2d(x, w, b, spec):
    return F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                              None if b is None else torch.from_numpy(b), **spec).numpy()


@pytest.mark.parametrize("name", list(TRANSPOSE_CASES))
def test_transpose_reference_matches_torch(name):
    x, w, b, spec = make_transpose(name, np.float64)
    batched = x if x.ndim == 4 else x[np.newaxis]
    ref = conv_transpose2d_reference(batched, w, b, **spec)
    np.testing.assert_allclose(ref if x.ndim == 4 else ref[0],
                               torch_conv_transpose2d(x, w, b, spec), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(TRANSPOSE_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_conv_transpose2d_matches_torch(dtype, name):
    x, w, b, spec = make_transpose(name, dtype)
    assert_close_to_torch(fastconv.conv_transpose2d(x, w, b, **spec),
                          torch_conv_transpose2d(x, w, b, spec), dtype)


# ---------------------------------------------------------------------------------------------
# Pooling against torch: max-pool values and indices exactly, avg/lp values and gradients
# ---------------------------------------------------------------------------------------------

@st.composite
def pool_geometries(draw, dilation=True, padding=True):
    """(input shape, kwargs) of a small random pooling problem that torch accepts."""
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    pads = (draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))) if padding else (0, 0)
    dils = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    sizes = []
    for k, p, d in zip((KH, KW), pads, dils):
        lowest = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(lowest, lowest + 8)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), sizes[0], sizes[1])
    kwargs = dict(kernel_size=(KH, KW), stride=stride, ceil_mode=draw(st.booleans()))
    if padding:
        kwargs["padding"] = pads
    if dilation:
        kwargs["dilation"] = dils
    return shape, kwargs


def pool_data(shape, dtype, kind, seed):
    """Integers in [-2, 2] (ties), with NaN/+inf/-inf sprinkled for kind "nan_inf", all -inf
    for "all_minus_inf", uniform in [0.5, 2) for "positive"."""
    rng = np.random.default_rng(seed)
    if kind == "positive":
        return rng.uniform(0.5, 2, shape).astype(dtype)
    if kind == "all_minus_inf":
        return np.full(shape, -np.inf, dtype)
    x = rng.integers(-2, 3, shape).astype(np.float64)
    if kind == "nan_inf":
        u = rng.random(shape)
        x[u < 0.1] = np.nan
        x[(u >= 0.1) & (u < 0.17)] = np.inf
        x[(u >= 0.17) & (u < 0.3)] = -np.inf
    return x.astype(dtype)


DTYPE = st.sampled_from([np.float32, np.float64])


@given(geometry=pool_geometries(), dtype=DTYPE,
       kind=st.sampled_from(["integer_ties", "nan_inf", "all_minus_inf"]),
       seed=st.integers(0, 2**16))
def test_max_pool2d_values_and_indices_equal_torch_exactly(geometry, dtype, kind, seed):
    shape, kwargs = geometry
    x = pool_data(shape, dtype, kind, seed)
    y, indices = fastconv.max_pool2d(x, **kwargs, return_indices=True)
    ty, tindices = F.max_pool2d(torch.from_numpy(x), **kwargs, return_indices=True)
    assert y.dtype == ty.numpy().dtype and indices.dtype == np.int64
    assert np.array_equal(y, ty.numpy(), equal_nan=True), (y, ty.numpy())
    np.testing.assert_array_equal(indices, tindices.numpy())


@given(geometry=pool_geometries(), dtype=DTYPE,
       kind=st.sampled_from(["integer_ties", "nan_inf"]), seed=st.integers(0, 2**16))
def test_max_pool2d_backward_equals_torch_autograd(geometry, dtype, kind, seed):
    shape, kwargs = geometry
    x = pool_data(shape, dtype, kind, seed)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ty, tindices = F.max_pool2d(xt, **kwargs, return_indices=True)
    # A window with no input element (dilation + padding) gets an index past the plane; torch's
    # backward then writes out of bounds, so never call it there.
    assume(int(tindices.max()) < shape[2] * shape[3])
    dy = np.random.default_rng(seed).uniform(-1, 1, ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(dy))
    _, indices = fastconv.max_pool2d(x, **kwargs, return_indices=True)
    dx = fastconv.max_pool2d_backward(dy, indices, x.shape)
    assert_close_to_torch(dx, xt.grad.numpy(), dtype)


AVG_FLAGS = st.sampled_from([dict(count_include_pad=True), dict(count_include_pad=False),
                             dict(divisor_override=3),
                             dict(count_include_pad=False, divisor_override=5),
                             dict(divisor_override=-3)])


@given(geometry=pool_geometries(dilation=False), dtype=DTYPE, flags=AVG_FLAGS,
       seed=st.integers(0, 2**16))
def test_avg_pool2d_and_its_gradient_match_torch(geometry, dtype, flags, seed):
    shape, kwargs = geometry
    kwargs = dict(kwargs, **flags)
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ty = F.avg_pool2d(xt, **kwargs)
    assert_close_to_torch(fastconv.avg_pool2d(x, **kwargs), ty.detach().numpy(), dtype)
    dy = np.random.default_rng(seed + 1).uniform(-1, 1, ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(dy))
    assert_close_to_torch(fastconv.avg_pool2d_backward(dy, x.shape, **kwargs),
                          xt.grad.numpy(), dtype)


@given(geometry=pool_geometries(dilation=False, padding=False), dtype=DTYPE,
       p=st.sampled_from([1, 2, 3, 1.5]), seed=st.integers(0, 2**16))
def test_lp_pool2d_and_its_gradient_match_torch(geometry, dtype, p, seed):
    # ceil_mode is drawn too: a partial last window is scaled by the full window size over
    # the covered size, as torch's avg_pool2d(x**p) * (kh*kw).
    shape, kwargs = geometry
    x = pool_data(shape, dtype, "positive", seed)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ty = F.lp_pool2d(xt, p, **kwargs)
    expected = ty.detach().numpy()
    assert_close_to_torch(fastconv.lp_pool2d(x, p, **kwargs), expected, dtype)
    dy = np.random.default_rng(seed + 1).uniform(-1, 1, ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(dy))
    assert_close_to_torch(fastconv.lp_pool2d_backward(dy, x, p, **kwargs), xt.grad.numpy(),
                          dtype)
    # The oracle too, in float64 (torch's float32 result is the limit of the comparison).
    tol = _tolerance(dtype)
    np.testing.assert_allclose(lp_pool2d_reference(x, p, **kwargs), expected, rtol=tol)
    np.testing.assert_allclose(lp_pool2d_backward_reference(dy, x, p, **kwargs),
                               xt.grad.numpy(), rtol=tol, atol=tol * np.abs(dy).sum())


@given(geometry=pool_geometries(dilation=False, padding=False), dtype=DTYPE,
       p=st.sampled_from([float("inf"), -float("inf")]),
       kind=st.sampled_from(["integer_ties", "nan_inf"]), seed=st.integers(0, 2**16))
def test_lp_pool2d_at_infinite_p_and_its_gradient_equal_torch(geometry, dtype, p, kind, seed):
    # Integers in [-2, 2] hold ties of |x| (2 and -2) and zeros; nan_inf adds NaN and +-inf.
    shape, kwargs = geometry
    x = pool_data(shape, dtype, kind, seed)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ty = F.lp_pool2d(xt, p, **kwargs)
    y = fastconv.lp_pool2d(x, p, **kwargs)
    assert y.dtype == dtype and np.array_equal(y, ty.detach().numpy(), equal_nan=True)
    dy = np.random.default_rng(seed + 1).uniform(-1, 1, ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(dy))
    assert_close_to_torch(fastconv.lp_pool2d_backward(dy, x, p, **kwargs), xt.grad.numpy(),
                          dtype)
    np.testing.assert_array_equal(lp_pool2d_reference(x, p, **kwargs), ty.detach().numpy())
    np.testing.assert_allclose(lp_pool2d_backward_reference(dy, x, p, **kwargs),
                               xt.grad.numpy(), rtol=_tolerance(dtype))


def test_conv_transpose2d_output_size_0_is_empty_as_torch_onednn():
    # Audit F5: torch returns (2, 3, 0, 2) on this float32 batch of 2 (its oneDNN path; its
    # other paths raise "Output size is too small"), fastconv on every path.
    x, w = np.ones((2, 3, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32)
    args = (None, (3, 2), (2, 0), (0, 1), 1, (2, 1))
    expected = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), *args)
    y = fastconv.conv_transpose2d(x, w, *args)
    assert y.shape == tuple(expected.shape) == (2, 3, 0, 2) and y.dtype == np.float32
