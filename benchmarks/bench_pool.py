"""asv benchmarks of `fastconv.max_pool2d` and `fastconv.max_pool2d_backward` on the standard
pooling shapes (`fastconv.bench_cases.POOL`: VGG 2x2/2, ResNet 3x3/2, CIFAR 2x2/2; float32).

`MaxPool2d` times the forward with and without indices and the backward per case x thread count,
and tracks the same runs as GB/s: the bytes each must read and write at least (float32 values,
int64 indices; see `pool_bytes`). Pooling is memory-bound, so GB/s is its figure of merit.

Setup runs before every timed call (asv_runner re-runs it per sample), so the arrays are made once
per process and cached.
"""
import functools

import numpy as np

import fastconv
from fastconv.bench_cases import POOL, out_size

from .common import THREADS, median_rate, random_array



@functools.lru_cache(maxsize=2)
def make_arrays(case):
    """Input, fastconv's forward output and indices, and an output gradient of a `POOL` case:
    float32 NCHW, fixed seed."""
    N, C, H, W, F, S = case
    rng = np.random.default_rng(0)
    x = random_array(rng, (N, C, H, W))
    y, indices = fastconv.max_pool2d(x, F, S, return_indices=True)
    dy = random_array(rng, y.shape)
    return x, indices, dy


def pool_bytes(case, op):
    """Bytes an operation reads and writes at least: "forward_indices" reads x and writes y and
    the int64 indices, "forward" reads x and writes y, "backward" reads dy and the indices and
    writes dx."""
    N, C, H, W, F, S = case
    inputs = N * C * H * W
    outputs = N * C * out_size(H, F, S, 0) * out_size(W, F, S, 0)
    return {"forward_indices": 4 * inputs + 12 * outputs,
            "forward": 4 * inputs + 4 * outputs,
            "backward": 12 * outputs + 4 * inputs}[op]


class MaxPool2d:
    """max_pool2d forward with and without indices, and its backward: time per call, and the
    same as GB/s (bytes read + written)."""

    params = (list(POOL), THREADS)
    param_names = ["case", "threads"]
    timeout = 120

    def setup(self, case, threads):
        self.case = POOL[case]
        self.x, self.indices, self.dy = make_arrays(self.case)
        fastconv.set_num_threads(threads)

    def teardown(self, case, threads):
        fastconv.set_num_threads(None)

    def run(self, op):
        N, C, H, W, F, S = self.case
        if op == "forward_indices":
            return fastconv.max_pool2d(self.x, F, S, return_indices=True)
        if op == "forward":
            return fastconv.max_pool2d(self.x, F, S)
        return fastconv.max_pool2d_backward(self.dy, self.indices, self.x.shape)

    def gbps(self, op):
        return median_rate(lambda: self.run(op), pool_bytes(self.case, op)) / 1e9

    def time_forward_indices(self, case, threads):
        self.run("forward_indices")

    def time_forward(self, case, threads):
        self.run("forward")

    def time_backward(self, case, threads):
        self.run("backward")

    def track_gbps_forward_indices(self, case, threads):
        """Median GB/s of timed calls after an untimed one (see `median_rate`)."""
        return self.gbps("forward_indices")

    def track_gbps_forward(self, case, threads):
        """Median GB/s of timed calls after an untimed one (see `median_rate`)."""
        return self.gbps("forward")

    def track_gbps_backward(self, case, threads):
        """Median GB/s of timed calls after an untimed one (see `median_rate`)."""
        return self.gbps("backward")

    track_gbps_forward_indices.unit = "GB/s"
    track_gbps_forward.unit = "GB/s"
    track_gbps_backward.unit = "GB/s"
