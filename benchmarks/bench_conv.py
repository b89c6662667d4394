"""asv benchmarks of `fastconv.conv2d` forward on the standard layer shapes.

The shapes are `fastconv.bench_cases.CONV` (the project's shared workload). `Conv2d` times every
case x algorithm x thread count and tracks the same runs as GFLOP/s (a multiply-add counted as 2
FLOPs); `Conv2dPeakMemory` records the process's peak memory at two batch sizes, to show that the
im2col workspace does not grow with the batch: only the input and output do.

Setup runs before every timed call (asv_runner re-runs it per sample), so the arrays are made once
per process and cached.
"""
import functools
import statistics
import time

import numpy as np

import fastconv
from fastconv.bench_cases import CONV, conv_flops

ALGORITHMS = ["direct", "im2col"]
THREADS = [1, 2]
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
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C, F, F), dtype=np.float32)
    w *= np.float32(1.0 / np.sqrt(C * F * F))
    return x, w


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
        """Median GFLOP/s over >= 3 timed calls and >= 0.2 s, after one untimed call."""
        run_conv2d(self.case, self.x, self.w, algorithm)
        times = []
        while len(times) < 3 or sum(times) < 0.2:
            start = time.perf_counter()
            run_conv2d(self.case, self.x, self.w, algorithm)
            times.append(time.perf_counter() - start)
        return conv_flops(self.case) / statistics.median(times) / 1e9

    track_gflops_conv2d.unit = "GFLOP/s"


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
