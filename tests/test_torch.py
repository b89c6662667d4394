"""conv2d against PyTorch itself (skipped when torch is not installed)."""
import numpy as np
import pytest

import fastconv

from reference import conv2d_reference, same_padding

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
