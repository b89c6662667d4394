"""Shared test configuration: hypothesis profile, the ISA fixture and the tolerance table.

Tolerance rule (used by every comparison against tests/reference.py)
--------------------------------------------------------------------
The oracle computes in float64 from the very same (already rounded) inputs, so the only error
the fast code may add is rounding in its own accumulation. Rounding error of a sum is bounded by
a multiple of the sum of the *absolute values* of its terms, not of the result (which may cancel
to ~0). So for each output element we require

    |y - ref| <= RTOL[dtype] * scale,    scale = sum of |terms| = conv(|x|, |w|) + |b|

computed by the same oracle on |x|, |w|, |b|. This is per element, so a tiny output next to a
huge one is still checked tightly, and an output that is exactly zero in every term (e.g. a
window entirely in the padding with no bias) must be exactly zero.
"""
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastconv
from fastconv import _config

from reference import conv2d_reference

# ---------------------------------------------------------------------------------------------
# hypothesis: deterministic and bounded, so the suite is reproducible and fast.
# ---------------------------------------------------------------------------------------------
settings.register_profile(
    "fastconv",
    derandomize=True,          # fixed seed: the same examples every run
    max_examples=40,
    deadline=None,             # first calls may pay one-off costs (thread pool start-up)
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("fastconv-thorough", parent=settings.get_profile("fastconv"),
                          max_examples=500)
settings.load_profile(os.environ.get("FASTCONV_HYPOTHESIS_PROFILE", "fastconv"))


# ---------------------------------------------------------------------------------------------
# Tolerances: relative to the per-element sum of |terms| (see the module docstring).
# ---------------------------------------------------------------------------------------------
RTOL = {
    np.dtype(np.float64): 1e-10,
    np.dtype(np.float32): 1e-5,
}


def reference_and_scale(x, w, b=None, **kwargs):
    """(conv2d_reference(x, w, b, **kwargs), the same on |x|, |w|, |b|: the sum of |terms|)."""
    ref = conv2d_reference(x, w, b, **kwargs)
    scale = conv2d_reference(np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64)),
                             None if b is None else np.abs(np.asarray(b, np.float64)), **kwargs)
    return ref, scale


def assert_close(y, ref, scale, dtype):
    """y has `dtype`, ref's shape, only finite values, and |y - ref| <= RTOL[dtype] * scale."""
    dtype = np.dtype(dtype)
    assert y.dtype == dtype, f"result dtype {y.dtype}, input dtype {dtype}"
    assert y.shape == ref.shape, f"result shape {y.shape}, reference shape {ref.shape}"
    assert np.all(np.isfinite(y)), f"non-finite outputs at {np.argwhere(~np.isfinite(y))[:5]}"
    error = np.abs(y.astype(np.float64) - ref)
    allowed = RTOL[dtype] * scale
    bad = error > allowed
    if np.any(bad):
        where = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{bad.sum()} of {y.size} outputs differ from the reference beyond "
            f"{RTOL[dtype]:g} * sum|terms|; first at {where}: got {y[where]!r}, "
            f"expected {ref[where]!r} (sum|terms| {scale[where]!r}); "
            f"max error/allowed {np.max(error / np.maximum(allowed, 1e-300)):.3g}")


def assert_matches_reference(y, x, w, b=None, *, stride=(1, 1), padding=((0, 0), (0, 0)),
                             dilation=(1, 1), groups=1):
    """y (fastconv's result, 4-D) equals conv2d_reference(x, w, b, ...) within RTOL[x.dtype]
    times the per-element sum of |terms|, and has x's dtype and the reference shape."""
    ref, scale = reference_and_scale(x, w, b, stride=stride, padding=padding,
                                     dilation=dilation, groups=groups)
    assert_close(y, ref, scale, np.asarray(x).dtype)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(params=_config.available_isas())
def isa(request):
    """Run the test on each ISA path this build has and this CPU runs; restore the previous."""
    previous = _config.get_isa()
    _config.set_isa(request.param)
    try:
        yield request.param
    finally:
        _config.set_isa(previous)


@pytest.fixture
def restore_threads():
    """Leave fastconv's thread setting as the test found it."""
    before = _config._requested_threads
    yield
    fastconv.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


# ---------------------------------------------------------------------------------------------
# Helpers shared by the test modules
# ---------------------------------------------------------------------------------------------
def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally, in this order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def dirty_the_heap(nbytes):
    """Fill blocks of about `nbytes` with all-ones bytes (a NaN in float32 and in float64) and
    free them, so the next np.empty of that size most likely reuses one: an output element the
    code under test forgets to write then shows up as NaN."""
    for size in (nbytes, nbytes + 64, 2 * nbytes):
        junk = np.full(max(1, size), 0xFF, np.uint8)
        del junk
