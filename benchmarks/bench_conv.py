"""asv benchmarks of `fastconv.conv2d` forward and backward on the standard layer shapes.

The shapes are `fastconv.bench_cases.CONV` (the project's shared workload). `Conv2d` times every
case x algorithm x thread count and tracks the same runs as GFLOP/s (a multiply-add counted as 2
FLOPs); `Conv2dBackward` does the same for the two gradients, each computed alone (dx: the
gradient with respect to the input, dw: with respect to the filters; each counts the forward's
FLOPs); `Conv2dPeakMemory` records the process's peak memory at two batch sizes, to show that the
im2col workspace does not grow with the batch: only the input and output do.
`Conv2dBackwardWeightDrivers` times dw with each driver forced on the layers around the cuts of
`fastconv.conv._backward_weight_driver`, `Conv2dPointwise` the forward of 1x1 layers with each
driver forced, and `Conv2dColdInput` the forward with its input evicted from the caches before
every call.

Setup runs before every timed call (asv_runner re-runs it per sample), so the arrays are made once
per process and cached.
"""
import functools
import statistics
import time

import numpy as np

import fastconv
from fastconv.bench_cases import CONV, conv_flops, conv_output_shape

from .common import THREADS, median_rate, random_array

ALGORITHMS = ["direct", "im2col"]
PEAKMEM_CASES = ["vgg_conv3_2", "fc_as_conv7"]
PEAKMEM_BATCHES = [1, 8]


def with_batch(case, batch):
    """`case` with its batch size N replaced by `batch`."""
    return (batch,) + tuple(case[1:])


@functools.lru_cache(maxsize=2)
def make_arrays(case):
    """Input and filters of a `CONV` case: float32 NCHW, fixed seed, filters scaled by
    1/sqrt(fan-in) so the outputs stay O(1)."""
    N, C, H, W, K, F, S, P, D = case
    rng = np.random.default_rng(0)
    x = random_array(rng, (N, C, H, W))
    w = random_array(rng, (K, C, F, F))
    w *= np.float32(1.0 / np.sqrt(C * F * F))
    return x, w


@functools.lru_cache(maxsize=2)
def make_output_gradient(case):
    """dy of a `CONV` case: float32, the forward output's shape, fixed seed."""
    return random_array(np.random.default_rng(1), conv_output_shape(case))


def run_conv2d(case, x, w, algorithm):
    N, C, H, W, K, F, S, P, D = case
    return fastconv.conv2d(x, w, stride=S, padding=P, dilation=D, algorithm=algorithm)


class Conv2d:
    """conv2d forward: time per call, and the same as GFLOP/s."""

    params = (list(CONV), ALGORITHMS, THREADS)
    param_names = ["case", "algorithm", "threads"]
    # The direct loops on the largest cases take a few seconds per call at one thread.
    timeout = 180

    def setup(self, case, algorithm, threads):
        self.case = CONV[case]
        self.x, self.w = make_arrays(self.case)
        fastconv.set_num_threads(threads)

    def teardown(self, case, algorithm, threads):
        fastconv.set_num_threads(None)

    def time_conv2d(self, case, algorithm, threads):
        run_conv2d(self.case, self.x, self.w, algorithm)

    def track_gflops_conv2d(self, case, algorithm, threads):
        """Median GFLOP/s of timed calls after an untimed one (see `median_rate`)."""
        return median_rate(lambda: run_conv2d(self.case, self.x, self.w, algorithm),
                           conv_flops(self.case)) / 1e9

    track_gflops_conv2d.unit = "GFLOP/s"


class Conv2dBackward:
    """conv2d backward, dx and dw each computed alone (the two halves of
    `fastconv.conv2d_backward`, through the internal drivers it calls): time per call, and the
    same as GFLOP/s (each gradient counts the forward's FLOPs)."""

    params = (list(CONV), THREADS)
    param_names = ["case", "threads"]
    timeout = 180

    def setup(self, case, threads):
        try:
            from fastconv._geometry import conv2d_backward_geometry
            from fastconv.conv import _backward_input, _backward_weight
        except ImportError:
            raise NotImplementedError("this fastconv has no separate dx / dw drivers") from None
        self.case = CONV[case]
        N, C, H, W, K, F, S, P, D = self.case
        x, w = make_arrays(self.case)
        dy = make_output_gradient(self.case)
        dy, x, w, geometry, _ = conv2d_backward_geometry("conv2d_backward", dy, x, w, S, P, D, 1)
        self.backward_input = lambda: _backward_input(dy, w, geometry)
        self.backward_weight = lambda: _backward_weight(dy, x, geometry)
        fastconv.set_num_threads(threads)

    def teardown(self, case, threads):
        fastconv.set_num_threads(None)

    def time_backward_input(self, case, threads):
        self.backward_input()

    def time_backward_weight(self, case, threads):
        self.backward_weight()

    def track_gflops_backward_input(self, case, threads):
        """Median GFLOP/s of timed calls after an untimed one (see `median_rate`)."""
        return median_rate(self.backward_input, conv_flops(self.case)) / 1e9

    def track_gflops_backward_weight(self, case, threads):
        """Median GFLOP/s of timed calls after an untimed one (see `median_rate`)."""
        return median_rate(self.backward_weight, conv_flops(self.case)) / 1e9

    track_gflops_backward_input.unit = "GFLOP/s"
    track_gflops_backward_weight.unit = "GFLOP/s"


class Conv2dPeakMemory:
    """Peak memory of one im2col conv2d call (two threads) at two batch sizes.

    The figure is the whole process's peak, arrays included: between the batch sizes it should
    grow by the input and output alone (vgg_conv3_2: 6.4 MB per image; fc_as_conv7: 0.9 MB per
    image beside 411 MB of filters), not by a batch-sized column matrix.
    """

    params = (PEAKMEM_CASES, PEAKMEM_BATCHES)
    param_names = ["case", "batch"]
    timeout = 180

    def setup(self, case, batch):
        self.case = with_batch(CONV[case], batch)
        self.x, self.w = make_arrays(self.case)
        fastconv.set_num_threads(2)

    def teardown(self, case, batch):
        fastconv.set_num_threads(None)

    def peakmem_conv2d(self, case, batch):
        run_conv2d(self.case, self.x, self.w, "im2col")


# Layers outside the standard suite on which `_backward_weight_driver`'s cuts were measured, in
# CONV's (N, C, H, W, K, F, S, P, D) form: filters x taps per filter around 32 x 160.
DRIVER_CASES = {
    "cifar_3x3": CONV["cifar_3x3"],                      # 12 filters x 27 taps
    "k16_c16_3x3": (16, 16, 32, 32, 16, 3, 1, 1, 1),     # 16 x 144
    "k24_c16_3x3": (16, 16, 32, 32, 24, 3, 1, 1, 1),     # 24 x 144
    "k32_c8_3x3": (16, 8, 32, 32, 32, 3, 1, 1, 1),       # 32 x 72
    "k8_c32_3x3": (8, 32, 56, 56, 8, 3, 1, 1, 1),        # 8 x 288
    "k16_c64_3x3": (8, 64, 56, 56, 16, 3, 1, 1, 1),      # 16 x 576
    "k16_c256_1x1": (8, 256, 28, 28, 16, 1, 1, 0, 1),    # 16 x 256
    "k24_c128_3x3": (8, 128, 28, 28, 24, 3, 1, 1, 1),    # 24 x 1152
}


class Conv2dBackwardWeightDrivers:
    """dw with each backward-weights driver forced (`fastconv.conv.BACKWARD_WEIGHT_DRIVERS`):
    time per call. Run with FASTCONV_ISA=avx2 for the AVX2 side of the cuts."""

    params = (list(DRIVER_CASES), ["gemm", "dot", "filter tiles"], THREADS)
    param_names = ["case", "driver", "threads"]
    timeout = 180

    def setup(self, case, driver, threads):
        try:
            from fastconv._geometry import conv2d_backward_geometry
            from fastconv.conv import BACKWARD_WEIGHT_DRIVERS, _backward_weight
        except ImportError:
            raise NotImplementedError("this fastconv cannot force a dw driver") from None
        if driver not in BACKWARD_WEIGHT_DRIVERS:
            raise NotImplementedError(f"this fastconv has no {driver!r} dw driver")
        N, C, H, W, K, F, S, P, D = DRIVER_CASES[case]
        x, w = make_arrays(DRIVER_CASES[case])
        dy = make_output_gradient(DRIVER_CASES[case])
        dy, x, w, geometry, _ = conv2d_backward_geometry("conv2d_backward", dy, x, w, S, P, D, 1)
        self.backward_weight = lambda: _backward_weight(dy, x, geometry, driver=driver)
        fastconv.set_num_threads(threads)

    def teardown(self, case, driver, threads):
        fastconv.set_num_threads(None)

    def time_backward_weight(self, case, driver, threads):
        self.backward_weight()


def forced_forward(case, driver_name, threads, streaming=False, cut_for_gemm=None):
    """A call of the Cython forward driver `driver_name` on a `CONV`-style case, bias-free, with
    fastconv's threads set to `threads`. streaming: the driver needs the streaming micro-kernels.
    cut_for_gemm: re-cut 1x1 planes as conv2d does for the GEMM (True) or direct (False)
    drivers. NotImplementedError (asv: skipped) where this fastconv or ISA path lacks it."""
    try:
        from fastconv import _config, _conv
        from fastconv._geometry import conv2d_geometry
        from fastconv.conv import _driver_arguments, _pointwise_cut, _recut
    except ImportError:
        raise NotImplementedError("this fastconv cannot force a forward driver") from None
    run = getattr(_conv, driver_name, None)
    if run is None:
        raise NotImplementedError(f"this fastconv has no {driver_name}")
    if streaming and not _conv.has_streaming_kernel(_config.isa_code()):
        raise NotImplementedError("this ISA path has no streaming kernel")
    N, C, H, W, K, F, S, P, D = case
    x, w = make_arrays(case)
    x, w, _, geometry, _ = conv2d_geometry("conv2d", x, w, None, S, P, D, 1)
    y = np.empty(geometry.output_shape, np.float32)
    if cut_for_gemm is not None:
        geometry, x, y = _recut(_pointwise_cut(geometry, cut_for_gemm), geometry, x, y)
    bias = np.zeros(1, np.float32)
    fastconv.set_num_threads(threads)
    arguments = _driver_arguments(geometry)
    return lambda: run(x, w, bias, False, y, *arguments)


# Small output planes (< 64 pixels) with filters from memory: the measurements behind
# fastconv._conv.gemm_streams_filters.
SMALL_PLANE_CASES = {
    "fc_as_conv7": CONV["fc_as_conv7"],                  # 36 pixels, 411 MB of filters
    "k1024_c512_7x7_N8": (8, 512, 12, 12, 1024, 7, 1, 0, 1),   # 288 pixels, 103 MB
    "k4096_c512_3x3_N16": (16, 512, 4, 4, 4096, 3, 1, 0, 1),   # 64 pixels, 75 MB
    "fc6_N1": (1, 512, 7, 7, 4096, 7, 1, 0, 1),   # 1 pixel (AVX2: the few-pixel kernel), 411 MB
}
SMALL_PLANE_DRIVERS = {"packed": "conv2d_im2col_over_batch",
                       "streaming": "conv2d_im2col_streaming_filters"}


class Conv2dSmallPlaneDrivers:
    """conv2d forward with each GEMM over the batch's pixels forced: the packed one and the one
    streaming the filters (same bits): time per call, on one thread (the rule's measurements;
    each setup draws up to 411 MB of filters, so two thread counts would double CI's share).
    Run with FASTCONV_ISA=avx2 for AVX2."""

    params = (list(SMALL_PLANE_CASES), list(SMALL_PLANE_DRIVERS), [1])
    param_names = ["case", "driver", "threads"]
    timeout = 300

    def setup(self, case, driver, threads):
        self.forward = forced_forward(SMALL_PLANE_CASES[case], SMALL_PLANE_DRIVERS[driver],
                                      threads, streaming=driver == "streaming")

    def teardown(self, case, driver, threads):
        fastconv.set_num_threads(None)

    def time_forward(self, case, driver, threads):
        self.forward()


class Conv2dBackwardInputFewPixels:
    """dx of VGG's fc6 at batch 1 (one output pixel per image) with the few-pixel column kernel
    and with the packed GEMM forced (same bits): the figures in
    fastconv._conv.conv2d_backward_input's docstring. One thread; AVX2 only has the kernel."""

    params = (["columns", "gemm"], [1])
    param_names = ["driver", "threads"]
    timeout = 300

    def setup(self, driver, threads):
        from fastconv import _config, _conv
        if "few_pixel_kernel" not in (_conv.conv2d_backward_input.__doc__ or ""):
            raise NotImplementedError("this fastconv has no few-pixel dx kernel")
        N, C, H, W, K, F, S, P, D = SMALL_PLANE_CASES["fc6_N1"]
        rng = np.random.default_rng(0)
        w = random_array(rng, (K, C, F, F))
        dy = random_array(rng, (N, K, 1, 1))
        dx = np.empty((N, C, H, W), np.float32)
        fastconv.set_num_threads(threads)
        arguments = (1, 1, 1, 0, 0, 1, 1, _config.isa_code(), threads, driver == "columns")
        self.backward = lambda: _conv.conv2d_backward_input(dy, w, dx, *arguments)

    def teardown(self, driver, threads):
        fastconv.set_num_threads(None)

    def time_backward_input(self, driver, threads):
        self.backward()


# ResNet-50's 1x1 layers at batch 4 (resnet_1x1 is the standard suite's). A 1x1 layer's dx is
# the 1x1 convolution with C and K swapped, so each pair of cases also times the other's dx.
POINTWISE_CASES = {
    "resnet_1x1": CONV["resnet_1x1"],                       # 256 -> 64 on 56x56
    "c64_k256_56x56": (4, 64, 56, 56, 256, 1, 1, 0, 1),
    "c512_k128_28x28": (4, 512, 28, 28, 128, 1, 1, 0, 1),
    "c128_k512_28x28": (4, 128, 28, 28, 512, 1, 1, 0, 1),
    "c1024_k256_14x14": (4, 1024, 14, 14, 256, 1, 1, 0, 1),
    "c256_k1024_14x14": (4, 256, 14, 14, 1024, 1, 1, 0, 1),
}
POINTWISE_DRIVERS = {"pointwise": "conv2d_pointwise", "direct": "conv2d_direct",
                     "packed": "conv2d_im2col"}


class Conv2dPointwise:
    """conv2d forward of 1x1 layers with each driver forced: the GEMM on x in place (the one
    algorithm="auto" runs where a streaming kernel exists), the direct tiles and the packed GEMM.
    Run with FASTCONV_ISA=avx2 for AVX2."""

    params = (list(POINTWISE_CASES), list(POINTWISE_DRIVERS), THREADS)
    param_names = ["case", "driver", "threads"]

    def setup(self, case, driver, threads):
        # The rows each driver is given by conv2d (the packed GEMM takes a plane as one row).
        self.forward = forced_forward(POINTWISE_CASES[case], POINTWISE_DRIVERS[driver], threads,
                                      streaming=driver == "pointwise",
                                      cut_for_gemm=driver != "direct")

    def teardown(self, case, driver, threads):
        fastconv.set_num_threads(None)

    def time_forward(self, case, driver, threads):
        self.forward()


EVICTION_BYTES = 64 * 2**20


class Conv2dColdInput:
    """conv2d forward (algorithm auto) with its input evicted from the caches before each call,
    by writing EVICTION_BYTES elsewhere first: median ms of 7 timed calls. In a network a layer's
    input is often the previous layer's output, already out of the caches when it is large."""

    params = (["resnet_1x1", "vgg_conv3_2"], THREADS)
    param_names = ["case", "threads"]
    timeout = 180

    def setup(self, case, threads):
        self.case = CONV[case]
        self.x, self.w = make_arrays(self.case)
        self.eviction = np.empty(EVICTION_BYTES // 4, np.float32)
        fastconv.set_num_threads(threads)

    def teardown(self, case, threads):
        fastconv.set_num_threads(None)

    def track_ms_after_cache_eviction(self, case, threads):
        run_conv2d(self.case, self.x, self.w, "auto")
        times = []
        for _ in range(7):
            self.eviction.fill(1.0)
            start = time.perf_counter()
            run_conv2d(self.case, self.x, self.w, "auto")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    track_ms_after_cache_eviction.unit = "ms"


# Layers off the standard suite with few filters per group (N, C, H, W, F, stride, groups), all
# 3x3 with padding 1: MobileNet v1's depthwise layers at unit stride on a large and a small map
# and at stride 2, and a ResNeXt-style layer of 32 groups of 4 channels and 4 filters.
FEW_FILTER_CASES = {
    "mobilenet_dw_32_112": (2, 32, 112, 112, 3, 1, 32),
    "mobilenet_dw_512_14": (4, 512, 14, 14, 3, 1, 512),
    "mobilenet_dw_s2_128": (4, 128, 56, 56, 3, 2, 128),
    "resnext_g32_128_56": (4, 128, 56, 56, 3, 1, 32),
}


class Conv2dFewFiltersPerGroup:
    """conv2d forward of grouped layers of at most 4 filters per group (direct convolution's
    single-filter kernel), tracked as GFLOP/s."""

    params = (list(FEW_FILTER_CASES), THREADS)
    param_names = ["case", "threads"]

    def setup(self, case, threads):
        N, C, H, W, F, S, G = FEW_FILTER_CASES[case]
        rng = np.random.default_rng(0)
        x = random_array(rng, (N, C, H, W))
        w = random_array(rng, (C, C // G, F, F))
        fastconv.set_num_threads(threads)
        self.forward = lambda: fastconv.conv2d(x, w, stride=S, padding=1, groups=G)
        HO = (H + 2 - F) // S + 1
        self.flops = 2 * N * C * HO * HO * (C // G) * F * F

    def teardown(self, case, threads):
        fastconv.set_num_threads(None)

    def time_forward(self, case, threads):
        self.forward()

    def track_gflops(self, case, threads):
        return median_rate(self.forward, self.flops) / 1e9

    track_gflops.unit = "GFLOP/s"
