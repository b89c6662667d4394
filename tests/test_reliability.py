"""Reliability beyond argument checking: absurd sizes are refused before anything is allocated,
the work of a call is bounded by its arrays and its 64-bit arithmetic never wraps; Python
threads get bit-identical results, set_num_threads in one thread never corrupts another's call
and the GIL is released while compiled code runs; a child forked (after fastconv ran on several
threads), spawned or started by a fork server computes the right answer; results are
bit-identical across runs, thread counts and ISA paths; inputs are never modified and outputs
never alias them; and arrays of more than 2**31 elements are right at their far end (marked
slow: FASTCONV_SLOW_TESTS=1 and enough available memory).

Hostile arguments are fuzzed in test_fuzz.py.
"""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastconv
from fastconv import _config
from fastconv.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential

from reference import avg_pool2d_reference, conv2d_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD_SETUP = """
import faulthandler
import numpy as np
import fastconv
faulthandler.enable()
f32 = np.float32
one = np.full((1, 1, 1, 1), 3.0, f32)
"""


def exit_status(code):
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


def run_python(code, timeout, env=None):
    """Run code in a fresh interpreter (this checkout's fastconv first on the path), with the
    environment variables env added."""
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


# =============================================================================================
# Absurd sizes: refused with ValueError at once, before anything is allocated
# =============================================================================================

def _zero_stride(shape, dtype=np.float32):
    """An array of `shape` whose elements all share one buffer: costs nothing to make."""
    return np.lib.stride_tricks.as_strided(np.ones(1, dtype), shape, (0,) * len(shape))


F32 = np.float32
ONE = np.full((1, 1, 1, 1), 3.0, F32)
W11 = np.ones((1, 1, 1, 1), F32)
IDX0 = np.zeros((1, 1, 1, 1), np.int64)

ABSURD = {
    "conv2d: huge padding": ("conv2d", lambda: fastconv.conv2d(ONE, W11, padding=(2**31, 2**31))),
    "conv2d: huge kernel extent (dilation) and padding": (
        "conv2d", lambda: fastconv.conv2d(ONE, np.ones((1, 1, 3, 3), F32), dilation=2**38,
                                          padding=2**39)),
    "conv2d: a 64 GiB output from a zero-stride input": (
        "conv2d", lambda: fastconv.conv2d(_zero_stride((64, 64, 512, 512)),
                                          np.ones((1024, 64, 1, 1), F32))),
    "conv_transpose2d: huge stride": (
        "conv_transpose2d", lambda: fastconv.conv_transpose2d(np.ones((1, 1, 64, 64), F32), W11,
                                                              stride=2**20)),
    "conv_transpose2d: huge dilation": (
        "conv_transpose2d", lambda: fastconv.conv_transpose2d(ONE, np.ones((1, 1, 2, 2), F32),
                                                              dilation=2**34)),
    "max_pool2d: a 2**52-element output of a zero-stride input": (
        "max_pool2d", lambda: fastconv.max_pool2d(_zero_stride((2**20, 2**20, 64, 64)), 1)),
    "avg_pool2d: a 2**52-element output": (
        "avg_pool2d", lambda: fastconv.avg_pool2d(_zero_stride((2**20, 2**20, 64, 64)), 1)),
    "lp_pool2d: a 2**52-element output": (
        "lp_pool2d", lambda: fastconv.lp_pool2d(_zero_stride((2**20, 2**20, 64, 64)), 2, 1)),
    "max_pool2d_backward: input_shape of 4 TiB": (
        "max_pool2d_backward", lambda: fastconv.max_pool2d_backward(
            ONE, IDX0, (1, 1, 2**20, 2**20))),
    "max_pool2d_backward: input_shape whose size overflows int64": (
        "max_pool2d_backward", lambda: fastconv.max_pool2d_backward(
            ONE, IDX0, (1, 1, 2**40, 2**40))),
    "avg_pool2d_backward: input_shape of 4 TiB": (
        "avg_pool2d_backward", lambda: fastconv.avg_pool2d_backward(
            ONE, (1, 1, 2**20, 2**20), 2**20)),
    "avg_pool2d_backward: input_shape whose size overflows int64": (
        "avg_pool2d_backward", lambda: fastconv.avg_pool2d_backward(
            ONE, (1, 1, 2**40, 2**40), 2**40)),
    "conv2d_backward: dx of 4 TiB for a zero-stride x": (
        "conv2d_backward", lambda: fastconv.conv2d_backward(
            np.ones((1, 1, 2, 2), F32), _zero_stride((1, 1, 2**20, 2**20)), W11, stride=2**19)),
    "conv2d: a 4 TiB contiguous copy of a zero-stride input": (
        "conv2d", lambda: fastconv.conv2d(_zero_stride((1, 1, 2**20, 2**20)), W11,
                                          stride=2**19)),
    "max_pool2d: a 4 TiB contiguous copy of a zero-stride input": (
        "max_pool2d", lambda: fastconv.max_pool2d(_zero_stride((1, 1, 2**20, 2**20)), 2**19)),
    "lp_pool2d: 4 TiB of x**p for a zero-stride input": (
        "lp_pool2d", lambda: fastconv.lp_pool2d(_zero_stride((1, 1, 2**20, 2**20)), 2, 2**19)),
    "conv2d: an empty result of 2**70 positions": (
        "conv2d", lambda: fastconv.conv2d(np.ones((1, 0, 1, 1), F32), np.ones((0, 0, 1, 1), F32),
                                          padding=2**34)),
    "conv_transpose2d: an empty batch of 2**80 positions": (
        "conv_transpose2d", lambda: fastconv.conv_transpose2d(np.ones((0, 1, 2, 2), F32), W11,
                                                              stride=2**40)),
    "avg_pool2d_backward: an empty batch of 2**80 positions": (
        "avg_pool2d_backward", lambda: fastconv.avg_pool2d_backward(
            np.ones((0, 1, 1, 1), F32), (0, 1, 2**40, 2**40), 2**40)),
    "Conv2D: 72 TiB of weights": ("Conv2D", lambda: Conv2D(2**20, 2**20, 3)),
    "Conv2D: a 2**40 x 2**40 kernel": ("Conv2D", lambda: Conv2D(1, 1, 2**40, padding=2**39)),
    "Linear: 2**60 weights": ("Linear", lambda: Linear(2**30, 2**30)),
}


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_sizes_are_refused_quickly_before_allocating(case):
    func, call = ABSURD[case]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(Exception) as caught:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = caught.value
    assert type(error) is ValueError and str(error).startswith(f"{func}: "), (
        f"{type(error).__name__}: {error}")
    assert elapsed < 1.0, f"took {elapsed:.2f} s to refuse"
    assert peak < 64 * 2**20, f"allocated {peak / 2**20:.0f} MiB before refusing"


# =============================================================================================
# The work of a call is bounded by its arrays, not by its parameters; 64-bit arithmetic
# =============================================================================================

# Each runs in a child with a time limit (a right answer takes milliseconds): a window loop over
# every kernel tap, padding included, takes hours at 2**40 taps; a workspace sized by the stride
# asks for hundreds of GiB.
BOUNDED_SECONDS = 8
BOUNDED = {
    "max_pool2d kernel 2**40 padding 2**39 on 1x1": (
        "y, i = fastconv.max_pool2d(one, 2**40, padding=2**39, return_indices=True)\n"
        "assert y.ravel().tolist() == [3.0] and i.ravel().tolist() == [0], (y, i)"),
    "max_pool2d kernel (1, 2**40) on 1x1": (
        "y, i = fastconv.max_pool2d(one, (1, 2**40), padding=(0, 2**39), return_indices=True)\n"
        "assert y.ravel().tolist() == [3.0] and i.ravel().tolist() == [0], (y, i)"),
    "max_pool2d kernel 2**31+1 padding 2**30 on 1x1": (
        "y = fastconv.max_pool2d(one, 2**31 + 1, padding=2**30)\n"
        "assert y.ravel().tolist() == [3.0], y"),
    "avg_pool2d kernel 2**40 padding 2**39 on 1x1": (
        "y = fastconv.avg_pool2d(one, 2**40, padding=2**39, count_include_pad=False)\n"
        "assert y.ravel().tolist() == [3.0], y"),
    "avg_pool2d_backward kernel 2**40 padding 2**39 on 1x1": (
        "dx = fastconv.avg_pool2d_backward(one, (1, 1, 1, 1), 2**40, padding=2**39, "
        "count_include_pad=False)\n"
        "assert dx.ravel().tolist() == [3.0], dx"),
    "conv2d dilation 2**39 padding 2**38": (
        "y = fastconv.conv2d(one, np.ones((2, 1, 2, 2), f32), stride=2**40, padding=2**38, "
        "dilation=2**39)\n"
        "assert y.shape == (1, 2, 1, 1) and not y.any(), y"),
    "conv2d direct stride 2**32 on 1x1": (
        "y = fastconv.conv2d(one, np.full((8, 1, 1, 1), 2, f32), stride=2**32, "
        "algorithm='direct')\n"
        "assert y.ravel().tolist() == [6.0] * 8, y"),
    "conv2d direct stride 2**26 on 1x1": (
        "y = fastconv.conv2d(one, np.full((8, 1, 1, 1), 2, f32), stride=2**26, "
        "algorithm='direct')\n"
        "assert y.ravel().tolist() == [6.0] * 8, y"),
}


@pytest.mark.parametrize("case", sorted(BOUNDED))
def test_work_is_bounded_by_the_arrays_not_the_parameters(case):
    code = CHILD_SETUP + BOUNDED[case] + "\nprint('ok')"
    try:
        child = run_python(code, timeout=BOUNDED_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {BOUNDED_SECONDS} s: {BOUNDED[case]}")
    assert child.returncode == 0 and child.stdout.strip().endswith("ok"), (
        f"{exit_status(child.returncode)}\n{child.stderr[-2000:]}")


# Parameters the validation accepts (every result is tiny) whose products -- stride x band
# width x dilated kernel height x channels -- pass 2**63 in the direct convolution's
# workspace arithmetic; a wrapped size once gave a too-small buffer and a segfault.
WRAPPING = {
    "conv2d direct float32": (
        "y = fastconv.conv2d(one, np.ones((8, 1, 2, 1), f32), algorithm='direct', **kw)\n"
        "assert y.shape == (1, 8, 2, 1) and not y.any(), y"),
    "conv2d direct float64": (
        "y = fastconv.conv2d(one.astype(np.float64), np.ones((8, 1, 2, 1)), algorithm='direct',"
        " **kw)\n"
        "assert y.shape == (1, 8, 2, 1) and not y.any(), y"),
    "conv2d_backward": (
        "dx, dw, db = fastconv.conv2d_backward(np.ones((1, 8, 2, 1), f32), one, "
        "np.ones((8, 1, 2, 1), f32), **kw)\n"
        "assert not dx.any() and not dw.any() and db.tolist() == [2.0] * 8, (dx, dw, db)"),
    "conv2d direct, 2**20 channels and stride 2**19": (
        "kw['stride'] = (1, 2**19)\n"
        "y = fastconv.conv2d(np.ones((1, 2**20, 1, 1), f32), np.ones((8, 2**20, 2, 1), f32), "
        "algorithm='direct', **kw)\n"
        "assert y.shape == (1, 8, 2, 1) and not y.any(), y"),
}


@pytest.mark.parametrize("isa_path", _config.available_isas())
@pytest.mark.parametrize("case", sorted(WRAPPING))
def test_workspace_sizes_never_wrap(case, isa_path):
    """Taps at rows -2**20 and 2**20 - 1 (and one row on): none meets the 1x1 image, so the
    result is zero (the gradient too, and db = sum(dy)). A refusal with a ValueError naming the
    function would do as well; a crash or another exception would not."""
    code = (CHILD_SETUP + "kw = dict(stride=(1, 2**40), padding=(2**20, 0), "
            "dilation=(2**21 - 1, 1))\n"
            "try:\n" + textwrap.indent(WRAPPING[case], "    ") + "\n"
            "except ValueError as error:\n"
            "    assert str(error).startswith(('conv2d: ', 'conv2d_backward: ')), error\n"
            "print('ok')")
    child = run_python(code, timeout=60, env={"FASTCONV_ISA": isa_path})
    assert child.returncode == 0 and child.stdout.strip().endswith("ok"), (
        f"{exit_status(child.returncode)}\n{child.stderr[-2000:]}")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kernel, padding", [(2**32, 2**31), (2**40, 2**39),
                                             ((2**33, 2**31), (2**32, 2**30))])
def test_average_divisors_do_not_wrap_in_64_bits(count_include_pad, kernel, padding):
    """A window of 2**64 or more padded positions: its divisor must not wrap to 0 (inf) or a
    wrong count; dividing by it gives a tiny, exact power-of-two fraction of the input."""
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    divisor = (kh * kw) if count_include_pad else 1       # the window clipped to [-P, 1+P)
    kwargs = dict(padding=padding, count_include_pad=count_include_pad)
    y = fastconv.avg_pool2d(ONE, kernel, **kwargs)
    assert y.ravel().tolist() == [np.float32(3.0 / divisor)], y
    dx = fastconv.avg_pool2d_backward(ONE, ONE.shape, kernel, **kwargs)
    assert dx.ravel().tolist() == [np.float32(3.0 / divisor)], dx
    # the oracle agrees (its window arithmetic is Python's unbounded ints)
    assert avg_pool2d_reference(ONE, (kh, kw), padding=(ph, pw),
                                count_include_pad=count_include_pad).ravel().tolist() == [
        3.0 / divisor]


INT32_BOUNDARY = dict(stride=(1, 2**32), padding=(0, 2**31), dilation=(1, 2**31))


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_int32_boundary_parameters_index_the_right_pixels_conv2d(algorithm):
    """Parameters at 2**31 (negative in 32 bits) and 2**32 (0 in 32 bits) whose result is one
    pixel: taps at columns -2**31 (padding) and 0 (the pixel), so y = w[..., 1] * 3."""
    w = np.repeat(np.array([[[[1.0, 2.0]]]], F32), 8, axis=0)
    y = fastconv.conv2d(ONE, w, algorithm=algorithm, **INT32_BOUNDARY)
    assert y.ravel().tolist() == [6.0] * 8, y


def test_int32_boundary_parameters_index_the_right_pixels():
    """The same for the gradients, the transposed convolution and pooling: each case's one
    contributing tap is known."""
    w = np.array([[[[1.0, 2.0]]]], F32)
    kwargs = INT32_BOUNDARY
    dx, dw, db = fastconv.conv2d_backward(ONE, ONE, w, **kwargs)
    assert dx.ravel().tolist() == [6.0] and dw.ravel().tolist() == [0.0, 9.0], (dx, dw)
    assert db.tolist() == [3.0]
    # rows 2**31 - 1 and 2**31 of the full transposed output: the second is x's second row
    x = np.array([[[[5.0], [7.0]]]], F32)
    y = fastconv.conv_transpose2d(x, W11, stride=(2**31, 1), padding=(2**31 - 1, 0),
                                  output_padding=(2**31 - 1, 0))
    assert y.ravel().tolist() == [0.0, 7.0], y
    y = fastconv.max_pool2d(np.arange(4, dtype=F32).reshape(1, 1, 2, 2), 1, stride=2**31)
    assert y.ravel().tolist() == [0.0], y
    y = fastconv.avg_pool2d(ONE, 1, divisor_override=2**40)
    assert y.ravel().tolist() == [np.float32(3.0 / 2**40)], y


# =============================================================================================
# Python threads
# =============================================================================================

def _thread_inputs(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((2, 16, 24, 24)).astype(dtype),
            rng.standard_normal((16, 16, 3, 3)).astype(dtype),
            rng.standard_normal((2, 16, 24, 24)).astype(dtype))


def _thread_work(x, w, dy):
    """The calls every thread makes; each one large enough to run on several OpenMP threads."""
    y_direct = fastconv.conv2d(x, w, padding=1, algorithm="direct")
    y_im2col = fastconv.conv2d(x, w, padding=1, algorithm="im2col")
    dx, dw, db = fastconv.conv2d_backward(dy, x, w, padding=1)
    pooled, indices = fastconv.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    return [y_direct, y_im2col, dx, dw, db, pooled, indices]


def _identical(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _run_threads(count, target):
    """Start count threads on target(i) together; re-raise the first exception any raised."""
    barrier = threading.Barrier(count)
    errors = []

    def run(i):
        try:
            barrier.wait(timeout=60)
            target(i)
        except BaseException as error:      # noqa: B036 - reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_eight_python_threads_get_the_serial_results_bit_for_bit(isa, restore_threads):
    fastconv.set_num_threads(2)
    inputs = [_thread_inputs(seed) for seed in range(8)]
    serial = [_thread_work(*args) for args in inputs]
    results = {}

    def work(i):
        for repeat in range(3):
            results[i, repeat] = _thread_work(*inputs[i])

    _run_threads(8, work)
    for (i, repeat), got in results.items():
        for k, (a, b) in enumerate(zip(got, serial[i])):
            assert _identical(a, b), f"thread {i}, repeat {repeat}, output {k} differs"


def test_set_num_threads_in_one_thread_never_corrupts_another_threads_call(restore_threads):
    inputs = [_thread_inputs(seed) for seed in range(4)]
    fastconv.set_num_threads(1)
    serial = [_thread_work(*args) for args in inputs]
    stop = threading.Event()
    toggles = [0]

    def toggle():
        while not stop.is_set():
            for n in (1, 2, None, 2):
                fastconv.set_num_threads(n)
                toggles[0] += 1
                time.sleep(0.0005)

    def work(i):
        # At least 6 rounds, and on until the toggling thread has switched the count often
        # enough to land inside calls (faster kernels once finished before it got going).
        rounds = 0
        while rounds < 6 or (toggles[0] <= 20 and rounds < 500):
            got = _thread_work(*inputs[i])
            for k, (a, b) in enumerate(zip(got, serial[i])):
                assert _identical(a, b), f"thread {i}: output {k} differs"
            rounds += 1

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        _run_threads(4, work)
    finally:
        stop.set()
        toggler.join()
    assert toggles[0] > 20, "the toggling thread hardly ran"


def test_the_gil_is_released_while_compiled_code_runs(restore_threads):
    """While one thread runs a long conv2d, another Python thread keeps running: it leaves time
    stamps well inside the call. (Holding the GIL, the call would leave none there: a thread
    that holds it in C code never yields.) Repeated a few times against a busy machine."""
    fastconv.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 58, 58)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    fastconv.conv2d(x, w)                               # warm up
    for attempt in range(3):
        stamps, stop = [], threading.Event()

        def count():
            while not stop.is_set():
                stamps.append(time.perf_counter())
                for _ in range(200):
                    pass

        counter = threading.Thread(target=count)
        counter.start()
        time.sleep(0.02)
        start = time.perf_counter()
        for _ in range(4):
            fastconv.conv2d(x, w)
        end = time.perf_counter()
        stop.set()
        counter.join()
        quarter = (end - start) / 4
        inside = sum(start + quarter <= t <= end - quarter for t in stamps)
        if inside >= 10:
            return
    pytest.fail(f"no other Python thread ran during conv2d: {inside} time stamps in the middle "
                f"half of a {end - start:.2f} s call")


# =============================================================================================
# fork, spawn and forkserver
# =============================================================================================

def _child_inputs():
    rng = np.random.default_rng(7)
    return (rng.standard_normal((4, 32, 40, 40)).astype(np.float32),
            rng.standard_normal((32, 32, 3, 3)).astype(np.float32))


def _child_work(queue):
    """What the child computes; it sends back its results and its thread count."""
    x, w = _child_inputs()
    y = fastconv.conv2d(x, w, padding=1)
    pooled, indices = fastconv.max_pool2d(x, 3, stride=2, return_indices=True)
    queue.put((y, pooled, indices, fastconv.get_num_threads()))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_child_process_computes_the_right_answer_without_hanging(method, restore_threads):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    fastconv.set_num_threads(2)
    x, w = _child_inputs()
    expected = (fastconv.conv2d(x, w, padding=1),
                *fastconv.max_pool2d(x, 3, stride=2, return_indices=True))
    assert _config._parallel_work_done or not _config._runtime.openmp_enabled()
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    child = context.Process(target=_child_work, args=(queue,))
    child.start()
    try:
        got = queue.get(timeout=120)
    except Exception:
        pytest.fail(f"the {method} child sent nothing in 120 s (hung or died: exit code "
                    f"{child.exitcode})")
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == 0
    for a, b in zip(got[:3], expected):
        assert _identical(a, b)
    if method == "fork":
        assert got[3] == 1, "a child forked after parallel work must run on one thread"


def test_fork_while_another_thread_is_inside_a_parallel_call(restore_threads):
    fastconv.set_num_threads(2)
    x, w = _child_inputs()
    expected = fastconv.conv2d(x, w, padding=1)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            fastconv.conv2d(x, w, padding=1)

    spinner = threading.Thread(target=spin)
    spinner.start()
    context = multiprocessing.get_context("fork")
    try:
        for _ in range(4):
            queue = context.Queue()
            child = context.Process(target=_child_work, args=(queue,))
            child.start()
            try:
                got = queue.get(timeout=60)
            except Exception:
                pytest.fail("a child forked during a parallel call hung or died")
            finally:
                child.join(timeout=30)
                if child.is_alive():
                    child.kill()
                    child.join()
            assert _identical(got[0], expected)
    finally:
        stop.set()
        spinner.join()


# =============================================================================================
# Determinism, untouched inputs, no aliasing
# =============================================================================================

def _determinism_cases():
    rng = np.random.default_rng(3)

    def r(*shape, dtype=np.float32):
        return rng.standard_normal(shape).astype(dtype)

    x32, x64 = r(2, 24, 30, 30), r(2, 24, 30, 30, dtype=np.float64)
    w32, w64 = r(20, 24, 3, 3), r(20, 24, 3, 3, dtype=np.float64)
    dy32 = r(2, 20, 15, 15)
    p = r(4, 16, 64, 64)
    y, idx = fastconv.max_pool2d(p, 3, stride=2, padding=1, return_indices=True)
    return {
        "conv2d direct float32": (lambda: fastconv.conv2d(x32, w32, padding=1,
                                                          algorithm="direct"), [x32, w32]),
        "conv2d im2col float64": (lambda: fastconv.conv2d(x64, w64, padding=1,
                                                          algorithm="im2col"), [x64, w64]),
        "conv2d grouped strided float32": (lambda: fastconv.conv2d(
            x32, w32[:, :12], stride=2, padding=1, groups=2), [x32, w32]),
        "conv2d_backward float32": (lambda: fastconv.conv2d_backward(
            dy32, x32, w32, stride=2, padding=1), [dy32, x32, w32]),
        "conv2d_backward float64": (lambda: fastconv.conv2d_backward(
            r(2, 20, 30, 30, dtype=np.float64) * 0 + 1, x64, w64, padding=1), [x64, w64]),
        "conv_transpose2d float32": (lambda: fastconv.conv_transpose2d(
            dy32, w32, stride=2, padding=1, output_padding=1), [dy32, w32]),
        "max_pool2d": (lambda: fastconv.max_pool2d(p, 3, stride=2, padding=1,
                                                   return_indices=True), [p]),
        "max_pool2d_backward": (lambda: fastconv.max_pool2d_backward(y, idx, p.shape), [y, idx]),
        "avg_pool2d": (lambda: fastconv.avg_pool2d(p, 3, stride=2, padding=1), [p]),
        "avg_pool2d_backward": (lambda: fastconv.avg_pool2d_backward(
            y, p.shape, 3, stride=2, padding=1), [y]),
        "lp_pool2d": (lambda: fastconv.lp_pool2d(p, 2, 3, stride=2), [p]),
        "lp_pool2d_backward": (lambda: fastconv.lp_pool2d_backward(
            np.ones((4, 16, 31, 31), np.float32), p, 2, 3, stride=2), [p]),
    }


DETERMINISM_CASES = sorted(_determinism_cases())


@pytest.mark.parametrize("case", DETERMINISM_CASES)
def test_results_are_bit_identical_across_runs_and_thread_counts(case, isa, restore_threads):
    call, inputs = _determinism_cases()[case]
    before = [a.tobytes() for a in inputs]
    runs = []
    for threads in (1, 2, 1, 2):
        fastconv.set_num_threads(threads)
        result = call()
        runs.append(result if isinstance(result, tuple) else (result,))
    for run in runs[1:]:
        for a, b in zip(run, runs[0]):
            assert _identical(a, b), f"{case}: results differ between runs / thread counts"
    assert [a.tobytes() for a in inputs] == before, f"{case} modified an input"
    for out in runs[0]:
        assert not any(np.shares_memory(out, a) for a in inputs)


def _identity_weights(C, dtype=np.float32):
    return np.eye(C, dtype=dtype).reshape(C, C, 1, 1)


def _aliasing_cases():
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 4)).astype(np.float32)
    eye = _identity_weights(3)
    relu, flatten, pool = ReLU(), Flatten(), MaxPool2D(1)
    return {
        "max_pool2d kernel 1": (lambda x: fastconv.max_pool2d(x, 1, return_indices=True), x),
        "max_pool2d kernel 1 unbatched": (lambda x: fastconv.max_pool2d(x[0], 1), x),
        "avg_pool2d kernel 1": (lambda x: fastconv.avg_pool2d(x, 1), x),
        "lp_pool2d kernel 1": (lambda x: fastconv.lp_pool2d(x, 1, 1), x),
        "conv2d 1x1 identity": (lambda x: fastconv.conv2d(x, eye), x),
        "conv2d 1x1 identity direct unbatched": (
            lambda x: fastconv.conv2d(x[0], eye, algorithm="direct"), x),
        "conv_transpose2d 1x1 identity": (lambda x: fastconv.conv_transpose2d(x, eye), x),
        "conv2d_backward 1x1 identity": (lambda x: fastconv.conv2d_backward(x, x, eye), x),
        "conv2d with an empty reduction": (
            lambda x: fastconv.conv2d(x[:, :0], np.ones((2, 0, 1, 1), np.float32)), x),
        "max_pool2d_backward with an empty dy": (
            lambda x: fastconv.max_pool2d_backward(x[:, :, :0], np.zeros((2, 3, 0, 4), int),
                                                   x.shape), x),
        "avg_pool2d_backward kernel 1": (
            lambda x: fastconv.avg_pool2d_backward(x, x.shape, 1), x),
        "ReLU forward": (lambda x: relu.forward(np.abs(x)), x),
        "ReLU backward": (lambda x: (relu.forward(np.ones_like(x)), relu.backward(x))[1], x),
        "Flatten forward": (lambda x: flatten.forward(x), x),
        "Flatten backward": (lambda x: (flatten.forward(x.copy()),
                                        flatten.backward(x.reshape(2, -1)))[1], x),
        "MaxPool2D(1) forward": (lambda x: pool.forward(x), x),
        "Sequential(Flatten()) forward": (lambda x: Sequential(Flatten()).forward(x), x),
    }


@pytest.mark.parametrize("case", sorted(_aliasing_cases()))
def test_outputs_never_alias_inputs(case):
    call, x = _aliasing_cases()[case]
    before = x.tobytes()
    result = call(x)
    for out in (result if isinstance(result, tuple) else (result,)):
        assert not np.shares_memory(out, x), f"{case}: the output is a view of the input"
    assert x.tobytes() == before, f"{case} modified its input"


# =============================================================================================
# Arrays of more than 2**31 elements (slow)
# =============================================================================================

def _available_memory_gib():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def big(gib):
    """Mark a test slow and run it only with FASTCONV_SLOW_TESTS=1 and gib GiB available."""
    enabled = os.environ.get("FASTCONV_SLOW_TESTS") == "1"
    available = _available_memory_gib() if enabled else 0.0
    reason = ("set FASTCONV_SLOW_TESTS=1 to run" if not enabled else
              f"needs {gib} GiB of available memory, {available:.1f} GiB here")
    return lambda f: pytest.mark.slow(pytest.mark.skipif(
        not enabled or available < gib, reason=reason)(f))


@pytest.fixture
def measured(request):
    """Wall time and the peak of traced (NumPy) memory of the test, printed at its end."""
    tracemalloc.start()
    start = time.perf_counter()
    yield
    elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\n{request.node.name}: {elapsed:.1f} s, peak {peak / 2**30:.1f} GiB of arrays")


SIDE = 46342     # SIDE**2 = 2**31 + 97316: the last two rows lie wholly beyond 2**31


def _big_image(rows_random=64):
    """(1, 1, SIDE, SIDE) float32 (8 GiB): -1 everywhere but random in the last rows and in
    the last columns, so the far end's windows each have one answer."""
    x = np.empty((1, 1, SIDE, SIDE), np.float32)
    x.fill(-1.0)
    rng = np.random.default_rng(11)
    x[0, 0, -rows_random:, :] = rng.standard_normal((rows_random, SIDE))
    x[0, 0, :, -rows_random:] = rng.standard_normal((SIDE, rows_random))
    return x


def _pool_oracle(block, reduce):
    """2x2 windows of a (rows, cols) block with even extents."""
    r, c = block.shape
    return reduce(block.reshape(r // 2, 2, c // 2, 2), axis=(1, 3))


@big(16)
def test_max_pool2d_and_backward_beyond_2_31_elements(measured):
    x = _big_image()
    y, indices = fastconv.max_pool2d(x, 2, return_indices=True)
    assert y.shape == (1, 1, SIDE // 2, SIDE // 2)
    block = x[0, 0, -64:, :].astype(np.float64)
    np.testing.assert_array_equal(y[0, 0, -32:, :], _pool_oracle(block, np.max))
    # each window's maximum as h*W + w in the input plane: past 2**31 in the last rows
    windows = block.reshape(32, 2, SIDE // 2, 2).transpose(0, 2, 1, 3).reshape(32, SIDE // 2, 4)
    first = np.argmax(windows, axis=2)
    h = (SIDE - 64) + 2 * np.arange(32)[:, None] + first // 2
    w = 2 * np.arange(SIDE // 2)[None, :] + first % 2
    np.testing.assert_array_equal(indices[0, 0, -32:, :], h * SIDE + w)
    assert indices[0, 0, -1, :].min() > 2**31
    np.testing.assert_array_equal(y[0, 0, :, -32:],
                                  _pool_oracle(x[0, 0, :, -64:].astype(np.float64), np.max))
    del x, block
    dx = fastconv.max_pool2d_backward(y, indices, (1, 1, SIDE, SIDE))
    expected = np.zeros((64, SIDE))
    np.add.at(expected.reshape(-1), (indices[0, 0, -32:, :] - (SIDE - 64) * SIDE).ravel(),
              y[0, 0, -32:, :].ravel())
    np.testing.assert_array_equal(dx[0, 0, -64:, :], expected)


@big(12)
def test_avg_pool2d_and_backward_beyond_2_31_elements(measured):
    x = _big_image()
    y = fastconv.avg_pool2d(x, 2)
    np.testing.assert_allclose(y[0, 0, -32:, :],
                               _pool_oracle(x[0, 0, -64:, :].astype(np.float64), np.mean),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y[0, 0, :, -32:],
                               _pool_oracle(x[0, 0, :, -64:].astype(np.float64), np.mean),
                               rtol=1e-6, atol=1e-6)
    del x
    dx = fastconv.avg_pool2d_backward(y, (1, 1, SIDE, SIDE), 2)
    expected = np.repeat(np.repeat(y[0, 0, -32:, :].astype(np.float64) / 4, 2, 0), 2, 1)
    np.testing.assert_allclose(dx[0, 0, -64:, :], expected, rtol=1e-6, atol=0)


def _conv_far_end(x, w, y, rows):
    """The oracle's last `rows` output rows of every image and filter (valid 3x3 or 1x1)."""
    FH = w.shape[2]
    tail = x[:, :, -(rows + FH - 1):, :].astype(np.float64)
    expected = conv2d_reference(tail, w)
    np.testing.assert_allclose(y[:, :, -rows:, :], expected, rtol=1e-5,
                               atol=1e-5 * np.abs(w).sum())


@big(14)
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_conv2d_1x1_beyond_2_31_elements(algorithm, measured):
    x = np.empty((1, 2, 32768, 32769), np.float32)   # 2**31 + 65536 elements
    x.fill(0.5)
    x[:, :, -4:, :] = np.random.default_rng(1).standard_normal((1, 2, 4, 32769))
    w = np.array([1.5, -2.0], np.float32).reshape(1, 2, 1, 1)
    y = fastconv.conv2d(x, w, algorithm=algorithm)
    _conv_far_end(x, w, y, 4)


@big(14)
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
def test_conv2d_3x3_batch_beyond_2_31_elements(algorithm, measured):
    x = np.empty((2, 2, 23170, 23171), np.float32)   # 2**31 + 41864 elements
    x.fill(0.25)
    x[:, :, -6:, :] = np.random.default_rng(2).standard_normal((2, 2, 6, 23171))
    w = np.random.default_rng(3).standard_normal((1, 2, 3, 3)).astype(np.float32)
    y = fastconv.conv2d(x, w, algorithm=algorithm)
    _conv_far_end(x, w, y, 4)
